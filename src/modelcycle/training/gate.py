"""The metric gate: a new version may not be worse than the champion by more than a margin.

A pure rule on two sets of metrics measured on the same rows (the new version's held-out rows).
Its result is a plain, serialisable value: the Dagster check shows it, and a release request can
carry it as the evidence it was judged on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from modelcycle.settings import DEFAULT_GATE_METRICS

GATED_METRICS = DEFAULT_GATE_METRICS


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict on one version, with the numbers it was decided on."""

    name: str
    version: str
    passed: bool
    reason: str
    margin: float
    challenger_metrics: dict[str, float]
    champion_version: str | None = None
    champion_metrics: dict[str, float] | None = None
    gated_metrics: tuple[str, ...] = GATED_METRICS

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (a NaN metric, one the rows could not measure, becomes None)."""
        document = asdict(self)
        for key in ("challenger_metrics", "champion_metrics"):
            if document[key] is not None:
                document[key] = {
                    m: (None if math.isnan(v) else v) for m, v in document[key].items()
                }
        document["gated_metrics"] = list(self.gated_metrics)
        return document


def judge(
    name: str,
    version: str,
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    champion_version: str | None,
    margin: float,
    metrics: Sequence[str] = GATED_METRICS,
) -> GateResult:
    """Pass unless one of `metrics` is worse than the champion's by more than `margin`.

    `champion` is None when there is no champion yet, or none comparable on these rows
    (`champion_version` then tells which).
    """

    def result(passed: bool, reason: str) -> GateResult:
        return GateResult(
            name=name,
            version=version,
            passed=passed,
            reason=reason,
            margin=margin,
            challenger_metrics=dict(challenger),
            champion_version=champion_version,
            champion_metrics=dict(champion) if champion is not None else None,
            gated_metrics=tuple(metrics),
        )

    if champion is None:
        return result(True, "no comparable champion" if champion_version else "no champion yet")
    worse = []
    for metric in metrics:
        ours, theirs = challenger.get(metric, math.nan), champion.get(metric, math.nan)
        if math.isnan(theirs):
            continue
        if math.isnan(ours) or ours < theirs - margin:
            worse.append(
                f"{metric} {ours:.3f} < champion v{champion_version}'s {theirs:.3f} − {margin}"
            )
    if worse:
        return result(False, "; ".join(worse))
    compared = ", ".join(metrics)
    return result(
        True, f"{compared}: not worse than champion v{champion_version} by more than {margin}"
    )
