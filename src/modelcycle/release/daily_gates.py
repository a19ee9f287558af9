"""The gates the daily job attaches to a challenger's release request, as pure rules.

What the training step measured (the metric gate's verdict, the ONNX parity difference), what the
daily evaluations saw (champion against challenger on the recent days), what the registry holds
(the artifact hash tag) and what the data-quality checks said about the training
window's days become `GateResult`s; the request's approval then waits on all of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from modelcycle.release.recent_days import recent_days_gate
from modelcycle.release.rules import GateResult, metric_gate
from modelcycle.store.evaluations import VersionDay


def quality_gate(window: Sequence[date], verdicts: Mapping[date, bool]) -> GateResult:
    """Every day of the training window passed its data-quality check (a day never checked
    counts as not passed: the evidence is missing)."""
    failed = [d.isoformat() for d in window if verdicts.get(d) is False]
    unchecked = [d.isoformat() for d in window if d not in verdicts]
    reasons = []
    if failed:
        reasons.append(f"data_quality failed on {', '.join(failed)}")
    if unchecked:
        reasons.append(f"no data_quality result for {', '.join(unchecked)}")
    first, last = min(window).isoformat(), max(window).isoformat()
    return GateResult(
        "data_quality",
        not reasons,
        "; ".join(reasons) or f"data_quality passed on every day {first} … {last}",
        {"days": len(window), "failed": failed, "unchecked": unchecked},
    )


def parity_gate(max_abs_difference: float | None) -> GateResult:
    """Training refuses to register a version whose ONNX scores differ from the native model's
    beyond tolerance; the recorded difference is the evidence."""
    if max_abs_difference is None or math.isnan(max_abs_difference):
        return GateResult("onnx_parity", False, "no ONNX parity difference recorded")
    return GateResult(
        "onnx_parity",
        True,
        f"ONNX matches the native model (max difference {max_abs_difference:.2e})",
        {"max_abs_difference": max_abs_difference},
    )


def artifact_hash_gate(expected: str | None, recorded: str | None) -> GateResult:
    """The registry carries the hash of the artifact training exported (serving verifies it)."""
    if not recorded:
        return GateResult("artifact_hash", False, "no artifact hash recorded on the version")
    if expected and recorded != expected:
        return GateResult(
            "artifact_hash",
            False,
            f"the version's hash {recorded[:12]}… is not the trained artifact's {expected[:12]}…",
        )
    return GateResult(
        "artifact_hash", True, f"sha256 {recorded[:12]}… recorded", {"sha256": recorded}
    )


def daily_gates(
    *,
    metric_verdict: Mapping[str, Any],
    window: Sequence[date],
    quality: Mapping[date, bool],
    parity_difference: float | None,
    trained_sha256: str | None,
    recorded_sha256: str | None,
    evaluations: Sequence[VersionDay] = (),
    champion: str | None = None,
    challenger: str = "",
    margin: float = 0.0,
    metrics: Sequence[str] = (),
    customers: GateResult | None = None,
) -> list[GateResult]:
    """All gates of a challenger the daily job registered, in the order a person reads them.

    `evaluations` are the store's batch evaluations of `champion` and `challenger`, for the
    recent-days comparison at the metric gate's `margin` on its `metrics`; `customers` is the
    customers gate training recorded (none recorded: the gate fails, its evidence is missing).
    """
    return [
        metric_gate(metric_verdict),
        recent_days_gate(
            evaluations, champion=champion, challenger=challenger, margin=margin, metrics=metrics
        ),
        customers or GateResult("customers", False, "no per-customer comparison recorded"),
        quality_gate(window, quality),
        parity_gate(parity_difference),
        artifact_hash_gate(trained_sha256, recorded_sha256),
    ]
