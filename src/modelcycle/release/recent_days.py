"""The recent-days gate: the challenger against the champion on the days both were evaluated.

The metric gate judges one set of held-out rows; this one looks at what the daily evaluations saw
on real days, so a challenger that did well on its training split but worse than the champion on
the latest days waits for a person. A pure rule on the store's evaluations (`version_history`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

from modelcycle.release.rules import GateResult
from modelcycle.store.evaluations import VersionDay

RECENT_DAYS = 7


def _metric(day: VersionDay, metric: str) -> float:
    """The day's metric; NaN for one the evaluations do not record or could not measure."""
    value = getattr(day, metric, None)
    return math.nan if value is None else float(value)


def _mean(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def recent_days_gate(
    history: Sequence[VersionDay],
    *,
    champion: str | None,
    challenger: str,
    margin: float,
    metrics: Sequence[str],
    days: int = RECENT_DAYS,
) -> GateResult:
    """Pass unless, averaged over the last `days` days both versions were evaluated, a gated
    metric of the challenger is worse than the champion's by more than `margin`."""
    if champion is None or champion == challenger:
        return GateResult("recent_days", True, "no other champion to compare with")
    by_version: dict[str, dict[date, VersionDay]] = {champion: {}, challenger: {}}
    for day in history:
        if day.version in by_version:
            by_version[day.version][day.day] = day
    common = sorted(set(by_version[champion]) & set(by_version[challenger]))[-days:]
    if not common:
        return GateResult("recent_days", True, "no evaluated days in common yet", {"days": 0})
    averages = {
        role: {m: _mean([_metric(by_version[v][d], m) for d in common]) for m in metrics}
        for role, v in (("champion", champion), ("challenger", challenger))
    }
    worse = []
    for metric in metrics:
        ours, theirs = averages["challenger"][metric], averages["champion"][metric]
        if math.isnan(theirs):
            continue
        if math.isnan(ours) or ours < theirs - margin:
            worse.append(f"{metric} {ours:.3f} < champion v{champion}'s {theirs:.3f} − {margin}")
    span = f"{len(common)} day(s) {common[0].isoformat()} … {common[-1].isoformat()}"
    values = {
        "days": len(common),
        "margin": margin,
        **{
            f"{role}_{m}": (None if math.isnan(x) else x)
            for role, ms in averages.items()
            for m, x in ms.items()
        },
    }
    if worse:
        return GateResult("recent_days", False, f"over {span}: {'; '.join(worse)}", values)
    detail = (
        f"over {span}: {', '.join(metrics)} not worse than champion v{champion} "
        f"by more than {margin}"
    )
    return GateResult("recent_days", True, detail, values)
