"""The names the daily job's modules share: asset keys, check names, the retry rule.

Kept apart from `assets.py` so the training step, the sensors and the tests can name an asset or
a check without importing the asset definitions (which import them back).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import dagster as dg

from modelcycle.errors import DataNotFoundError, InvalidInputError, ModelValidationError
from modelcycle.registry.uris import is_tracking_server, mask_uri
from modelcycle.settings import Settings

CLASSIFIER_KEY = dg.AssetKey("classifier_model")
DETECTOR_KEY = dg.AssetKey("anomaly_model")
# each model's release request, opened after registration with the gates attached
RELEASE_KEYS = {
    CLASSIFIER_KEY: dg.AssetKey("classifier_release"),
    DETECTOR_KEY: dg.AssetKey("anomaly_release"),
}
QUALITY_CHECK = "data_quality"
GATE_CHECK = "metric_gate"
MODEL_STALE_AFTER = timedelta(hours=36)  # as the shipped `model_stale` alert rule

# Storage and the registry fail transiently; back off, with jitter so retries do not align.
NETWORK_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2.0, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


@contextmanager
def retried_only_if_transient() -> Iterator[None]:
    """Bad data or a refused model fails the step at once: retrying cannot fix either. Storage
    and registry errors (and anything unexpected) go to `NETWORK_RETRY`."""
    try:
        yield
    except (InvalidInputError, DataNotFoundError, ModelValidationError) as error:
        raise dg.Failure(description=str(error), allow_retries=False) from error


def mlflow_run_url(settings: Settings, experiment_id: str, run_id: str) -> str:
    """A link to the run in the MLflow UI, without credentials; `mlflow://<run>` when embedded."""
    base = mask_uri(settings.resolved_tracking_uri)
    if not is_tracking_server(base):
        return f"mlflow://{run_id}"  # embedded store: no UI address to link to
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
