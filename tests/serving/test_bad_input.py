"""Bad requests get a 4xx that names the problem, never a 5xx: by hand, then by schemathesis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import unregister_string_format
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from modelcycle.features.windows import FeatureSpec
from modelcycle.serving.webhooks import sign
from tests.serving.conftest import TrainedRegistry
from tests.support.api import ApiServer, start_api

pytestmark = pytest.mark.slow

WEBHOOK_SECRET = "webhook-secret-9c2e"
DEVICE = "device-0003"
DEVICE_ROUTE = "/v1/devices/{device_id}/predict"


@pytest.fixture(scope="module")
def shared_api(
    trained_registry: TrainedRegistry,
    tmp_path_factory: pytest.TempPathFactory,
    server_log_dir: Path,
) -> Iterator[ApiServer]:
    """One API for the module, with small limits so they are easy to cross."""
    env = {
        **trained_registry.env,
        "MODELCYCLE_SERVING_CACHE_DIR": str(tmp_path_factory.mktemp("cache")),
        "MODELCYCLE_SERVING_MAX_ROWS": "20",
        "MODELCYCLE_SERVING_MAX_BODY_BYTES": "65536",
        "MODELCYCLE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    with start_api(env, server_log_dir) as server:
        server.wait_ready()
        yield server


def _predict(api: ApiServer, name: str, body: Any) -> requests.Response:
    return api.post(f"/v1/models/{name}/predict", body)


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"instances": [[1.0, 2.0]]}, 422, "instances[0]: 2 values"),
        ({"instances": [[1.0] * 51] * 21}, 413, "at most 20 rows of 51 values"),  # unparsed
        ({"instances": [[1.0]] * 21}, 413, "21 rows, at most 20"),
        ({"records": [{"n_readings": 60.0}]}, 422, "records[0]: missing"),
        ({"instances": [["x"] * 51]}, 422, "instances[0][0]"),
        ({"instances": []}, 422, "instances"),
        ({}, 422, "exactly one of `instances` or `records`"),
        ({"instances": [[1.0] * 51], "extra": 1}, 422, "extra"),
        ([1, 2, 3], 422, "body"),
        # float32 cannot hold these: they would be scored as ±infinity
        ({"instances": [[1e300] + [1.0] * 50]}, 422, "instances[0][0]: Input should be less"),
        ({"instances": [[1.0] * 50 + [-3.5e38]]}, 422, "instances[0][50]: Input should be greater"),
        ({"records": [{"n_readings": 1e39}]}, 422, "records[0].n_readings: Input should be less"),
        # strict numbers: neither a bool nor a numeric string is a reading
        (
            {"instances": [[True] + [1.0] * 50]},
            422,
            "instances[0][0]: Input should be a valid number",
        ),
        (
            {"instances": [["1.5"] + [1.0] * 50]},
            422,
            "instances[0][0]: Input should be a valid number",
        ),
    ],
)
def test_bad_bodies_get_a_4xx_naming_the_field(
    shared_api: ApiServer, trained_registry: TrainedRegistry, body: Any, status: int, names: str
) -> None:
    answer = _predict(shared_api, trained_registry.classifier, body)
    assert answer.status_code == status, answer.text
    payload = answer.json()
    message = payload.get("message") or payload["detail"]
    assert names in str(message)


def test_nan_and_infinity_are_refused(
    shared_api: ApiServer, trained_registry: TrainedRegistry
) -> None:
    url = f"{shared_api.url}/v1/models/{trained_registry.classifier}/predict"
    for literal in ("NaN", "Infinity", "-Infinity"):
        row = ", ".join(["1.0"] * 50 + [literal])
        answer = requests.post(
            url,
            data=f'{{"instances": [[{row}]]}}',
            headers={**shared_api.auth, "Content-Type": "application/json"},
            timeout=5,
        )
        assert answer.status_code == 422
        assert "instances[0][50]: Input should be a finite number" in answer.json()["message"]


def test_unknown_model_and_oversized_body(shared_api: ApiServer) -> None:
    answer = _predict(shared_api, "no-such-model", {"instances": [[1.0]]})
    assert answer.status_code == 404
    assert "no-such-model" in answer.json()["detail"]
    big = {"instances": [[123456.789] * 51] * 200}
    answer = _predict(shared_api, "no-such-model", big)
    assert answer.status_code == 413
    assert "request body over 65536 bytes" in answer.json()["detail"]


def _served_sensors(api: ApiServer) -> tuple[str, ...]:
    features = api.get("/v1/models").json()["models"][0]["features"]
    return FeatureSpec.from_feature_names(features).sensors


def _device_body(sensors: tuple[str, ...], timestamps: list[str], value: Any = 1.5) -> Any:
    return {"timestamps": timestamps, "values": {s: [value] * len(timestamps) for s in sensors}}


@pytest.mark.parametrize(
    ("timestamps", "value", "names"),
    [
        (["0001-01-01T00:30:00+01:00"], 1.5, "timestamps[0]: 0001-01-01T00:30:00+01:00 is outside"),
        (
            ["2026-01-01T05:00:00", "9999-12-31T23:59:59-01:00"],
            1.5,
            "timestamps[1]: 9999-12-31T23:59:59-01:00 is outside",
        ),
        (["2026-01-01T05:00:00"], True, "[0]: Input should be a valid number"),
        (["2026-01-01T05:00:00"], 1e300, "[0]: Input should be less than or equal to 1000"),
    ],
)
def test_device_readings_out_of_range_get_a_4xx_naming_the_field(
    shared_api: ApiServer, timestamps: list[str], value: Any, names: str
) -> None:
    body = _device_body(_served_sensors(shared_api), timestamps, value)
    answer = shared_api.post(f"/v1/devices/{DEVICE}/predict", body)
    assert answer.status_code == 422, answer.text
    payload = answer.json()
    assert names in str(payload.get("message") or payload["detail"])


# Datetime strings at the calendar's ends, with offsets that push them past it in UTC.
_OFFSETS = st.sampled_from(["", "Z", "+00:00", "+01:00", "-01:00", "+23:59", "-23:59", "+05:30"])
_NEAR_LIMITS = st.sampled_from(
    ["0001-01-01T00:00:00", "0001-01-01T00:30:00", "9999-12-31T23:59:59", "9999-12-31T23:00:00"]
)
LIMIT_DATETIMES = st.builds(
    "{}{}".format,
    st.one_of(_NEAR_LIMITS, st.datetimes().map(lambda moment: moment.isoformat())),
    _OFFSETS,
)


@given(timestamps=st.lists(LIMIT_DATETIMES, min_size=1, max_size=4))
@example(timestamps=["0001-01-01T00:30:00+01:00"])
@example(timestamps=["9999-12-31T23:59:59-01:00"])
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_device_timestamps_near_the_calendars_limits_never_get_a_5xx(
    shared_api: ApiServer, timestamps: list[str]
) -> None:
    answer = shared_api.post(
        f"/v1/devices/{DEVICE}/predict", _device_body(_served_sensors(shared_api), timestamps)
    )
    assert answer.status_code in (200, 422), answer.text


def _webhook(api: ApiServer, headers: dict[str, str], body: bytes = b"{}") -> requests.Response:
    return requests.post(f"{api.url}/v1/webhooks/mlflow", data=body, headers=headers, timeout=5)


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        ("\u00b2", None),  # a digit to str.isdigit, not to int()
        ("9" * 5000, None),  # past int()'s limit on digits
        ("12a", None),
        ("", None),
        (None, "v1,\u00e9t\u00e9"),  # not ASCII: hmac.compare_digest refuses to compare it
        (None, ""),
    ],
)
def test_webhook_with_malformed_headers_gets_401(
    shared_api: ApiServer, timestamp: str | None, signature: str | None
) -> None:
    now = str(int(time.time()))
    delivery = f"delivery-{time.monotonic_ns()}"
    headers = {
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": now if timestamp is None else timestamp,
        "X-MLflow-Signature": sign(WEBHOOK_SECRET, delivery, now, b"{}")
        if signature is None
        else signature,
    }
    answer = _webhook(shared_api, headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["detail"].startswith("webhook refused: ")


def test_docs_page_loads_its_assets_from_the_api(shared_api: ApiServer) -> None:
    page = requests.get(f"{shared_api.url}/docs", timeout=5).text
    assert "cdn" not in page.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        assert f"/docs-assets/{asset}" in page
        answer = requests.get(f"{shared_api.url}/docs-assets/{asset}", timeout=5)
        assert answer.status_code == 200
        assert len(answer.content) > 1000


# Driven through schemathesis' Python API: its pytest plugin does not run on pytest 9 yet.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _with_served_sensors(case: Any, sensors: tuple[str, ...]) -> None:
    """Device bodies under the served sensor names, so generated timestamps and values get past
    the sensor check to the conversions behind it; the generated values are reused in turn."""
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("timestamps"), list):
        return
    n = len(body["timestamps"])
    given = body.get("values")  # a negative case may make it anything, e.g. `true`
    generated = (
        [v for v in given.values() if isinstance(v, list)] if isinstance(given, dict) else []
    )
    readings = [value for values in generated for value in values] or [None]
    body["values"] = {
        s: [readings[(i + k) % len(readings)] for i in range(n)] for k, s in enumerate(sensors)
    }


def _fuzz(api: ApiServer, operation: Any, mode: GenerationMode, sensors: tuple[str, ...]) -> None:
    device_route = operation.path == DEVICE_ROUTE
    # A known device, so device requests get past the fleet check to the readings.
    fixed = {"device_id": DEVICE} if device_route else None

    @given(case=operation.as_strategy(mode, path_parameters=fixed))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def call(case: Any) -> None:
        if device_route:
            _with_served_sensors(case, sensors)
        case.call_and_validate(headers=api.auth, checks=CHECKS)

    call()


def test_no_request_the_schema_allows_or_forbids_gets_a_5xx(shared_api: ApiServer) -> None:
    schema = schemathesis.openapi.from_url(f"{shared_api.url}/openapi.json")
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), results
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert {op.path for op in operations} >= {
        "/v1/models/{name}/predict",
        "/v1/models",
        DEVICE_ROUTE,
        "/v1/webhooks/mlflow",
    }
    sensors = _served_sensors(shared_api)
    # Timestamps at the calendar's ends with offsets, besides hypothesis' own date-times.
    schemathesis.openapi.format("date-time", LIMIT_DATETIMES)
    try:
        for operation in operations:
            _fuzz(shared_api, operation, GenerationMode.POSITIVE, sensors)
            if operation.body:  # bodies the schema forbids (nothing to break without a body)
                _fuzz(shared_api, operation, GenerationMode.NEGATIVE, sensors)
    finally:
        unregister_string_format("date-time")
    metrics = requests.get(f"{shared_api.url}/metrics", timeout=5).text
    assert 'status="422"' in metrics  # generated requests did reach the API and were refused
