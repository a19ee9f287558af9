"""`monitor report`: accuracy per day, the 7-day average, versions, drift and model age (the
serving champion's, with the newest version's beside it).

The same data renders as a table, as JSON for scripts, and as a chart (PNG, or HTML with the PNG
inlined, so the page loads nothing from the network).
"""

from __future__ import annotations

import base64
import html
import io
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelcycle.errors import InvalidInputError
from modelcycle.registry.ages import STALE_AFTER_HOURS, ModelAge
from modelcycle.store import Store
from modelcycle.store.evaluations import DailyAccuracy, daily_metric, latest_drift, window_average

AVERAGE_DAYS = 7


@dataclass(frozen=True)
class ModelReport:
    model: str
    daily: list[DailyAccuracy]
    accuracy_7d_avg: float | None
    age: ModelAge | None
    drift: dict[str, Any] | None
    stale_after_hours: float = STALE_AFTER_HOURS

    def age_hours(self, now: datetime) -> float | None:
        """The serving champion's age, the one the stale alert measures."""
        return None if self.age is None else self.age.champion_hours(now)

    def age_line(self, now: datetime) -> str:
        """E.g. "champion v1 trained 52.0 h ago (over 36 h); newest v8 0.1 h ago"."""
        if self.age is None:
            return "no registered version"
        parts = []
        hours = self.age.champion_hours(now)
        if self.age.champion is None or hours is None:
            parts.append("no champion")
        else:
            over = f" (over {self.stale_after_hours:g} h)"
            flag = over if hours > self.stale_after_hours else ""
            parts.append(f"champion v{self.age.champion[0]} trained {hours:.1f} h ago{flag}")
        newest = self.age.newest_hours(now)
        if self.age.newest is not None and newest is not None:
            parts.append(f"newest v{self.age.newest[0]} {newest:.1f} h ago")
        return "; ".join(parts)

    def average_of(self, metric: str) -> float | None:
        """Another metric's 7-day average, the way accuracy's is taken."""
        values = [replace(d, metric=_or_nan(getattr(d, metric))) for d in self.daily]
        return window_average(values, AVERAGE_DAYS, use_metric=True)

    def rolling_average(self) -> list[float | None]:
        """The 7-day average as of each evaluated day, for the chart."""
        return [window_average(self.daily[: i + 1], AVERAGE_DAYS) for i in range(len(self.daily))]

    def to_json_dict(self, now: datetime) -> dict[str, Any]:
        age = self.age_hours(now)
        champion = self.age.champion if self.age else None
        newest = self.age.newest if self.age else None
        newest_age = self.age.newest_hours(now) if self.age else None
        return {
            "daily": [
                {
                    "date": d.day.isoformat(),
                    "accuracy": d.accuracy,
                    "f1": d.f1,
                    "pr_auc": d.pr_auc,
                    "confusion": d.confusion,
                    "version": d.version,
                    "n": d.n,
                }
                for d in self.daily
            ],
            "accuracy_7d_avg": self.accuracy_7d_avg,
            "f1_7d_avg": self.average_of("f1"),
            "pr_auc_7d_avg": self.average_of("pr_auc"),
            "champion_version": champion[0] if champion else None,
            "champion_trained_at": champion[1].isoformat() if champion else None,
            "model_age_hours": round(age, 2) if age is not None else None,
            "stale": age is not None and age > self.stale_after_hours,
            "newest_version": newest[0] if newest else None,
            "newest_age_hours": round(newest_age, 2) if newest_age is not None else None,
            "drift": self.drift,
        }


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def build_report(
    store: Store,
    models: list[str],
    *,
    days: int,
    ages: dict[str, ModelAge],
) -> list[ModelReport]:
    reports = []
    for model in models:
        daily = daily_metric(store, model, days=days)
        drift = latest_drift(store, model)
        reports.append(
            ModelReport(
                model=model,
                daily=daily,
                accuracy_7d_avg=window_average(daily, AVERAGE_DAYS),
                age=ages.get(model),
                drift=None
                if drift is None
                else {
                    "date": drift.day.isoformat(),
                    "version": drift.version,
                    "method": drift.method,
                    "share_drifted": round(drift.share_drifted, 4),
                    "n_drifted": drift.n_drifted,
                    "n_features": drift.n_features,
                    "max_feature": drift.max_feature,
                    "max_value": round(drift.max_value, 4),
                },
            )
        )
    return reports


def _figure_png(reports: list[ModelReport]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI toolkit
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(reports), 1, figsize=(10, 3.2 * len(reports)), squeeze=False, sharex=True
    )
    for axis, report in zip(axes[:, 0], reports, strict=True):
        days = [d.day for d in report.daily]
        axis.plot(days, [d.accuracy for d in report.daily], marker="o", label="accuracy (day)")
        axis.plot(days, report.rolling_average(), linestyle="--", label="7-day average")
        for previous, current in zip(report.daily, report.daily[1:], strict=False):
            if current.version != previous.version:
                axis.axvline(current.day, color="grey", linewidth=0.8)
                axis.annotate(
                    f"v{current.version}",
                    (current.day, 1.0),
                    xycoords=("data", "axes fraction"),
                    fontsize=8,
                    va="top",
                )
        axis.set_title(report.model)
        axis.set_ylabel("accuracy")
        axis.grid(alpha=0.3)
        axis.legend(loc="lower left", fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def write_chart(reports: list[ModelReport], target: Path, now: datetime | None = None) -> None:
    """Write the chart as PNG or self-contained HTML, chosen by the file's suffix; atomically."""
    suffix = target.suffix.lower()
    if suffix not in (".png", ".html"):
        raise InvalidInputError(f"--plot {target}: give a .png or .html file")
    if not target.parent.exists():
        raise InvalidInputError(f"--plot {target}: folder {target.parent} does not exist")
    png = _figure_png(reports)
    if suffix == ".png":
        data = png
    else:
        stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
        encoded = base64.b64encode(png).decode()
        names = html.escape(", ".join(r.model for r in reports))
        data = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>modelcycle accuracy: {names}</title></head><body>"
            f"<h1>Accuracy over time</h1><p>{names}, generated {stamp}</p>"
            f"<img alt='accuracy over time' src='data:image/png;base64,{encoded}'>"
            "</body></html>"
        ).encode()
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as handle:
        handle.write(data)
    Path(handle.name).replace(target)
