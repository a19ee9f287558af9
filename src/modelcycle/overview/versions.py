"""One model's versions side by side (params, metrics, data window, data hash) and each
version's evaluation history, for the model page."""

from __future__ import annotations

from typing import Any

from modelcycle.overview.registry_reads import RegistryReads
from modelcycle.release.compare import HEADLINE_METRICS, LINEAGE_TAGS
from modelcycle.store import Store
from modelcycle.store.evaluations import version_history

MAX_VERSIONS = 10  # side by side: the newest ten; older ones stay in `models list`
HISTORY_DAYS = 90  # each version's evaluations over the model's last 90 evaluated days


def model_versions(store: Store, registry: RegistryReads, model: str) -> dict[str, Any]:
    """The newest versions first, each with its lineage and its batch evaluations by day."""
    registry.aliases(model)  # a `DataNotFoundError` for a model never registered
    records = registry.versions(model, MAX_VERSIONS)
    history: dict[str, list[dict[str, Any]]] = {r.version: [] for r in records}
    for row in version_history(store, model, list(history), days=HISTORY_DAYS):
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
