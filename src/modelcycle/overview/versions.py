"""One model's versions side by side (params, metrics, data window, data hash) and each
version's evaluation history, for the model page."""

from __future__ import annotations

from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from modelcycle.errors import DataNotFoundError, RegistryError
from modelcycle.registry.catalog import list_versions
from modelcycle.registry.connection import first_line
from modelcycle.release.compare import HEADLINE_METRICS, LINEAGE_TAGS
from modelcycle.store import Store
from modelcycle.store.evaluations import version_history

MAX_VERSIONS = 10  # side by side: the newest ten; older ones stay in `models list`


def check_registered(client: MlflowClient, model: str) -> dict[str, str]:
    """The model's aliases; a `DataNotFoundError` when no model has that name (or none could)."""
    try:
        found = client.get_registered_model(model)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise DataNotFoundError(f"no registered model {model!r}") from error
        raise RegistryError(f"reading {model} failed: {first_line(error)}") from error
    return {alias: str(v) for alias, v in (found.aliases or {}).items()}


def model_versions(store: Store, client: MlflowClient, model: str) -> dict[str, Any]:
    """The newest versions first, each with its lineage and its batch evaluations by day."""
    check_registered(client, model)
    records = sorted(list_versions(client, [model]), key=lambda r: -int(r.version))
    records = records[:MAX_VERSIONS]
    history: dict[str, list[dict[str, Any]]] = {r.version: [] for r in records}
    for row in version_history(store, model, list(history)):
        history[row.version].append(
            {
                "day": row.day.isoformat(),
                "role": row.role,
                "n": row.n,
                "accuracy": row.accuracy,
                "f1": row.f1,
                "pr_auc": row.pr_auc,
            }
        )
    metric_names = [m for m in HEADLINE_METRICS if any(m in r.metrics for r in records)]
    param_names = sorted({p for r in records for p in r.params})
    return {
        "model": model,
        "metric_names": metric_names,
        "param_names": param_names,
        "versions": [
            {
                "version": r.version,
                "aliases": r.aliases,
                "created_at": r.created_at,
                "run_id": r.run_id,
                "metrics": {m: r.metrics.get(m) for m in metric_names},
                "params": {p: r.params.get(p) for p in param_names},
                "lineage": {name: r.tags.get(tag) for name, tag in LINEAGE_TAGS.items()},
                "evaluations": history[r.version],
            }
            for r in records
        ],
    }
