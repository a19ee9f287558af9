"""Live traffic in a comparison: how two versions scored the same requests in the shadow.

The API with MODELCYCLE_SERVING_SHADOW writes `lake/shadow/`: for every request the champion
answered, the challenger's score of each row beside the champion's. A comparison of two versions
reads the rows where one was the champion and the other the challenger, and says how often they
reached the same decision (same fault class, same anomaly flag, each at its own threshold) and how
far apart their scores were.
"""

from __future__ import annotations

import io
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from modelcycle.errors import StorageError
from modelcycle.lake import layout
from modelcycle.storage import ObjectStore

COLUMNS = ["predicted_at", "request_id", "model", "version", "score", "champion_version"]
COLUMNS += ["champion_score"]


def _shadow_rows(lake: ObjectStore) -> pl.DataFrame | None:
    """Every part of the shadow log; a part that cannot be read fails the reading, named."""
    tables = []
    for key in lake.glob(layout.shadow_glob()):
        try:
            tables.append(pq.read_table(io.BytesIO(lake.read_bytes(key)), columns=COLUMNS))
        except (OSError, pa.ArrowException) as error:
            raise StorageError(f"shadow log part {key} cannot be read: {error}") from error
    if not tables:
        return None
    frame = pl.from_arrow(pa.concat_tables(tables))
    assert isinstance(frame, pl.DataFrame)
    return frame


def live_traffic(
    lake: ObjectStore, model: str, a: str, b: str, thresholds: tuple[float, float]
) -> dict[str, Any] | None:
    """Rows both versions scored live (one as champion, one in the shadow), their agreement rate
    and mean absolute score difference; None when the shadow log has none."""
    rows = _shadow_rows(lake)
    if rows is None:
        return None
    pair = rows.filter(
        (pl.col("model") == model)
        & (
            ((pl.col("champion_version") == a) & (pl.col("version") == b))
            | ((pl.col("champion_version") == b) & (pl.col("version") == a))
        )
    )
    if pair.is_empty():
        return None
    a_is_champion = pl.col("champion_version") == a
    pair = pair.with_columns(
        score_a=pl.when(a_is_champion).then(pl.col("champion_score")).otherwise(pl.col("score")),
        score_b=pl.when(a_is_champion).then(pl.col("score")).otherwise(pl.col("champion_score")),
    ).with_columns(
        flag_a=pl.col("score_a") >= thresholds[0], flag_b=pl.col("score_b") >= thresholds[1]
    )
    summary = pair.select(
        rows=pl.len(),
        requests=pl.col("request_id").n_unique(),
        first=pl.col("predicted_at").min(),
        last=pl.col("predicted_at").max(),
        agreement=(pl.col("flag_a") == pl.col("flag_b")).mean(),
        mean_abs_difference=(pl.col("score_a") - pl.col("score_b")).abs().mean(),
        flagged_a=pl.col("flag_a").sum(),
        flagged_b=pl.col("flag_b").sum(),
    ).row(0, named=True)
    return {
        "rows": int(summary["rows"]),
        "requests": int(summary["requests"]),
        "first": summary["first"].isoformat(),
        "last": summary["last"].isoformat(),
        "agreement": float(summary["agreement"]),
        "mean_abs_difference": float(summary["mean_abs_difference"]),
        "flagged": {"a": int(summary["flagged_a"]), "b": int(summary["flagged_b"])},
        "thresholds": {"a": thresholds[0], "b": thresholds[1]},
    }
