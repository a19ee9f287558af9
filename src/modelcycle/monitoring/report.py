"""`monitor report`: accuracy per day, the 7-day average, versions, drift and model age.

The same data renders as a table, as JSON for scripts, and as a chart (PNG, or HTML with the PNG
inlined, so the page loads nothing from the network).
"""

from __future__ import annotations

import base64
import html
import io
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelcycle.errors import InvalidInputError
from modelcycle.store import Store
from modelcycle.store.evaluations import DailyAccuracy, daily_metric, latest_drift, window_average

AVERAGE_DAYS = 7


@dataclass(frozen=True)
class ModelReport:
    model: str
    daily: list[DailyAccuracy]
    accuracy_7d_avg: float | None
    newest_version: str | None
    newest_version_at: datetime | None
    drift: dict[str, Any] | None

    def age_hours(self, now: datetime) -> float | None:
        if self.newest_version_at is None:
            return None
        return (now - self.newest_version_at).total_seconds() / 3600

    def rolling_average(self) -> list[float | None]:
        """The 7-day average as of each evaluated day, for the chart."""
        return [window_average(self.daily[: i + 1], AVERAGE_DAYS) for i in range(len(self.daily))]

    def to_json_dict(self, now: datetime) -> dict[str, Any]:
        age = self.age_hours(now)
        return {
            "daily": [
                {"date": d.day.isoformat(), "accuracy": d.accuracy, "version": d.version, "n": d.n}
                for d in self.daily
            ],
            "accuracy_7d_avg": self.accuracy_7d_avg,
            "newest_version": self.newest_version,
            "model_age_hours": round(age, 2) if age is not None else None,
            "drift": self.drift,
        }


def build_report(
    store: Store,
    models: list[str],
    *,
    days: int,
    newest_versions: dict[str, tuple[str, datetime]],
) -> list[ModelReport]:
    reports = []
    for model in models:
        daily = daily_metric(store, model, days=days)
        drift = latest_drift(store, model)
        newest = newest_versions.get(model)
        reports.append(
            ModelReport(
                model=model,
                daily=daily,
                accuracy_7d_avg=window_average(daily, AVERAGE_DAYS),
                newest_version=newest[0] if newest else None,
                newest_version_at=newest[1] if newest else None,
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
