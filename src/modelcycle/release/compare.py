"""Two versions of a model side by side: what a person reads before deciding a release.

`facts` reads a version from the registry (its tags, and its training run's params and metrics);
`side_by_side` is pure and gives the rows the CLI prints and the API returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

from modelcycle.errors import DataNotFoundError, InvalidInputError, RegistryError
from modelcycle.registry.contract import SHA256_TAG
from modelcycle.registry.uris import first_line
from modelcycle.release.rules import ReleaseRecord
from modelcycle.store import Store
from modelcycle.store.evaluations import CONFUSION_COLUMNS, VersionDay, version_history

if TYPE_CHECKING:  # MLflow is imported when a version is read: the API starts without it
    from mlflow.tracking import MlflowClient

# What training records on a version (training/runner.py), as the comparison names it.
LINEAGE_TAGS = {
    "window_start": "modelcycle.window_start",
    "window_end": "modelcycle.window_end",
    "data_hash": "modelcycle.data_hash",
    "onnx_sha256": SHA256_TAG,
    "git_sha": "modelcycle.git_sha",
    "kind": "modelcycle.kind",
}
# Listed first: accuracy (users ask for it) next to what shows a model that misses faults.
HEADLINE_METRICS = ("accuracy", "f1", "pr_auc", "precision", "recall", "roc_auc")
THRESHOLD_PARAM = "decision_threshold"
DEFAULT_THRESHOLD = 0.5  # as monitoring assumes for a version without the param


@dataclass(frozen=True)
class VersionFacts:
    version: str
    aliases: list[str]
    run_id: str
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


def facts(client: MlflowClient, model: str, version: str) -> VersionFacts:
    """What the registry and the version's training run say about one version."""
    from mlflow.exceptions import MlflowException

    if not version.isdigit():
        raise InvalidInputError(f"version {version!r}: a registered version is a number")
    try:
        found = client.get_model_version(model, version)
        aliases = client.get_registered_model(model).aliases or {}
        params: dict[str, str] = {}
        metrics: dict[str, float] = {}
        if found.run_id:
            run = client.get_run(found.run_id)
            params, metrics = dict(run.data.params), dict(run.data.metrics)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise DataNotFoundError(f"no version {version} of model {model!r}") from error
        raise RegistryError(
            f"reading {model} version {version} failed: {first_line(error)}"
        ) from error
    except (requests.RequestException, OSError) as error:
        raise RegistryError(
            f"reading {model} version {version} failed: {first_line(error)}"
        ) from error
    if not metrics:  # no run to read: the metrics training copied onto the version
        metrics = {
            key.removeprefix("metric."): float(value)
            for key, value in (found.tags or {}).items()
            if key.startswith("metric.") and _is_number(value)
        }
    return VersionFacts(
        version=str(found.version),
        aliases=sorted(a for a, v in aliases.items() if str(v) == str(found.version)),
        run_id=str(found.run_id or ""),
        params=params,
        metrics=metrics,
        tags=dict(found.tags or {}),
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def side_by_side(
    model: str,
    a: VersionFacts,
    b: VersionFacts,
    releases: Mapping[str, ReleaseRecord | None],
) -> dict[str, Any]:
    """Params, metrics with deltas (b - a), lineage and gate results of the two versions."""
    metrics = [
        {
            "name": name,
            "a": a.metrics.get(name),
            "b": b.metrics.get(name),
            "delta": (b.metrics[name] - a.metrics[name])
            if name in a.metrics and name in b.metrics
            else None,
        }
        for name in _metric_order({*a.metrics, *b.metrics})
    ]
    params = [
        {"name": name, "a": a.params.get(name), "b": b.params.get(name)}
        for name in sorted({*a.params, *b.params})
    ]
    lineage = [
        {"name": name, "a": a.tags.get(tag), "b": b.tags.get(tag)}
        for name, tag in LINEAGE_TAGS.items()
    ]
    return {
        "model": model,
        "a": _version_summary(a, releases.get(a.version)),
        "b": _version_summary(b, releases.get(b.version)),
        "metrics": metrics,
        "params": params,
        "lineage": lineage,
        "confusion": {"a": _confusion(a), "b": _confusion(b)},
        "gates": _gates(releases.get(a.version), releases.get(b.version)),
    }


def _metric_order(names: set[str]) -> list[str]:
    first = [name for name in HEADLINE_METRICS if name in names]
    return first + sorted(names - set(first))


def _confusion(facts_: VersionFacts) -> dict[str, Any] | None:
    """The version's confusion matrix on its held-out rows, at its own threshold (None for a
    version trained before training recorded it)."""
    if not all(name in facts_.metrics for name in CONFUSION_COLUMNS):
        return None
    return {
        "threshold": _as_number(facts_.params.get(THRESHOLD_PARAM)),
        **{name: int(facts_.metrics[name]) for name in CONFUSION_COLUMNS},
    }


def decision_threshold(facts_: VersionFacts) -> float:
    """The score at which the version flags a fault or an anomaly (0.5 when none was recorded)."""
    threshold = _as_number(facts_.params.get(THRESHOLD_PARAM))
    return DEFAULT_THRESHOLD if threshold is None else threshold


def _as_number(text: str | None) -> float | None:
    return float(text) if text is not None and _is_number(text) else None


def with_history(comparison: dict[str, Any], store: Store) -> dict[str, Any]:
    """The comparison plus both versions' batch evaluations on the days both were evaluated
    (the champion's and the challenger's scores of the same day's labelled windows)."""
    a, b = comparison["a"]["version"], comparison["b"]["version"]
    by_day: dict[Any, dict[str, VersionDay]] = {}
    for row in version_history(store, comparison["model"], [a, b]):
        by_day.setdefault(row.day, {})[row.version] = row
    comparison["history"] = [
        {"date": day.isoformat(), "a": _evaluated(rows[a]), "b": _evaluated(rows[b])}
        for day, rows in sorted(by_day.items())
        if a in rows and b in rows
    ]
    return comparison


def _evaluated(row: VersionDay) -> dict[str, Any]:
    return {
        "role": row.role,
        "n": row.n,
        "accuracy": row.accuracy,
        "f1": row.f1,
        "pr_auc": row.pr_auc,
        "confusion": row.confusion,
    }


def _version_summary(facts_: VersionFacts, release: ReleaseRecord | None) -> dict[str, Any]:
    return {
        "version": facts_.version,
        "aliases": facts_.aliases,
        "run_id": facts_.run_id,
        "release": None
        if release is None
        else {"id": release.id, "state": release.state, "gates_passed": release.gates_passed},
    }


def _gates(a: ReleaseRecord | None, b: ReleaseRecord | None) -> list[dict[str, Any]]:
    by_name: dict[str, dict[str, Any]] = {}
    for side, release in (("a", a), ("b", b)):
        for gate in release.gates if release is not None else []:
            row = by_name.setdefault(gate.name, {"name": gate.name, "a": None, "b": None})
            row[side] = {"passed": gate.passed, "detail": gate.detail}
    return list(by_name.values())
