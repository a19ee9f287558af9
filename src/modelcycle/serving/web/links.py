"""Links from the dashboard to the MLflow and Dagster UIs, never carrying credentials."""

from __future__ import annotations

from urllib.parse import quote

from modelcycle.registry.uris import is_tracking_server, mask_uri
from modelcycle.settings import Settings

# The daily job's asset of each model (orchestration/keys.py names them; the web adapter may not
# import the orchestration adapter).
_ASSETS = {"classifier": "classifier_model", "anomaly": "anomaly_model"}


class Links:
    def __init__(self, settings: Settings):
        self.settings = settings
        base = settings.mlflow_url or mask_uri(settings.resolved_tracking_uri)
        self.mlflow = base.rstrip("/") if is_tracking_server(base) else None
        self.dagster = settings.dagster_url.rstrip("/")

    def mlflow_version(self, model: str, version: str) -> str | None:
        if self.mlflow is None:
            return None
        return f"{self.mlflow}/#/models/{quote(model, safe='')}/versions/{quote(version)}"

    def dagster_asset(self, model: str) -> str:
        kind = "classifier" if model == self.settings.classifier_model_name else "anomaly"
        return f"{self.dagster}/assets/{_ASSETS[kind]}"

    def dagster_runs(self, day: str) -> str:
        return f"{self.dagster}/runs?q%5B%5D=tag%3Adagster%2Fpartition%3D{quote(day)}"
