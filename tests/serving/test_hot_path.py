"""The predict hot path: what it answers itself, and that everything else reaches the full app."""

from __future__ import annotations

import orjson
import pytest

from modelcycle.serving.hot_path import plain_matrix, predict_target

WIDTH = 3


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [[1.0, 2.5, -3.0]]},
        {"instances": [[1, 2, 3], [4.5, 5.5, 6.5]]},  # integers are numbers, as the schema says
    ],
)
def test_plain_rows_are_answered_on_the_hot_path(body: dict[str, object]) -> None:
    matrix = plain_matrix(orjson.dumps(body), WIDTH, max_rows=10)
    assert matrix is not None
    assert matrix.dtype.name == "float32"
    assert matrix.tolist() == [[float(v) for v in row] for row in body["instances"]]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [[1.0, None, 3.0]]},  # a missing value: the full path turns it into NaN
        {"instances": [[1.0, True, 3.0]]},  # a boolean is a client's mistake (422 there)
        {"instances": [[1.0, "2", 3.0]]},  # so is a string
        {"instances": [[1.0, 2.0]]},  # the wrong width: the full path names the row
        {"instances": [[1.0, 2.0, 3.0], [1.0, 2.0]]},  # ragged
        {"instances": [[1.0, 2.0, 3.0]] * 11},  # over max_rows: 413 there
        {"instances": []},
        {"instances": [[1.0, 2.0, 1e39]]},  # beyond float32
        {"instances": [[[1.0, 2.0, 3.0]]]},  # one level too deep
        {"records": [{"a": 1.0, "b": 2.0, "c": 3.0}]},  # by name: the full path maps the columns
        {"instances": [[1.0, 2.0, 3.0]], "extra": 1},
    ],
)
def test_anything_else_goes_to_the_full_app(body: dict[str, object]) -> None:
    assert plain_matrix(orjson.dumps(body), WIDTH, max_rows=10) is None


def test_broken_json_goes_to_the_full_app() -> None:
    assert plain_matrix(b'{"instances": [[1.0, 2.0, 3.0]', WIDTH, max_rows=10) is None


@pytest.mark.parametrize(
    "raw",
    [
        b'{"\\u0069nstances": [[1.0, 2.0, 3.0]]}',  # the key spelt with an escape
        b'{"instances": [[1.0, 2.0, {}]]}',  # an object: no quote, no letter to find
        b'{"instances": [[1.0, 2.0, 3.4028236e38]]}',  # just over float32's largest value
        b'{"instances": [[1.0, false, 3.0]]}',
    ],
)
def test_bodies_the_byte_scans_let_through_are_still_refused(raw: bytes) -> None:
    assert plain_matrix(raw, WIDTH, max_rows=10) is None


def test_exponents_and_whitespace_are_plain_numbers() -> None:
    raw = b'{ "instances" : [ [1e2, -2.5E-3 , 3] ] }'
    matrix = plain_matrix(raw, WIDTH, max_rows=10)
    assert matrix is not None and matrix.tolist() == [[100.0, -0.0024999999441206455, 3.0]]


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/models/sensor-fault-classifier/predict", "sensor-fault-classifier"),
        ("GET", "/v1/models/sensor-fault-classifier/predict", None),
        ("POST", "/v1/models//predict", None),
        ("POST", "/v1/models/a/b/predict", None),
        ("POST", "/v1/devices/d-1/predict", None),
    ],
)
def test_only_the_predict_route_is_taken(method: str, path: str, expected: str | None) -> None:
    scope = {"type": "http", "method": method, "path": path}
    assert predict_target(scope) == expected
