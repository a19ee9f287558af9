"""The row rules' column pre-check: a sensor it clears has no out-of-range value in any row."""

from __future__ import annotations

import math

import polars as pl
import pytest

from modelcycle.lake.rules import sensors_out_of_range


@pytest.mark.parametrize(
    ("values", "outside"),
    [
        ([1.0, -2.5, None], False),
        ([None, None, None], False),
        ([1.0, 1000.0, -1000.0], False),  # the range's ends are in it
        ([1.0, 1000.5, None], True),
        ([-1000.5, 1.0, 2.0], True),
        ([1.0, math.nan, 2.0], True),
        ([1.0, math.inf, 2.0], True),
        ([-math.inf, 1.0, 2.0], True),
        ([math.inf, -math.inf, 2.0], True),  # a sum of NaN, and a max above the range
    ],
)
def test_a_sensor_is_suspect_exactly_when_a_row_of_it_is_out_of_range(
    values: list[float | None], outside: bool
) -> None:
    frame = pl.DataFrame(
        {"s000": values, "s001": [0.0, 0.0, 0.0]}, schema={"s000": pl.Float32, "s001": pl.Float32}
    )
    assert sensors_out_of_range(frame, ("s000", "s001")) == (["s000"] if outside else [])
