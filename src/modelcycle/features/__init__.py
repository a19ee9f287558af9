"""Window features: the one definition shared by training, batch scoring and the prediction API."""

from modelcycle.features.windows import (
    WINDOW_MINUTES,
    FeatureSpec,
    compute_features,
    feature_sql,
)

__all__ = ["WINDOW_MINUTES", "FeatureSpec", "compute_features", "feature_sql"]
