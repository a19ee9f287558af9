"""Request and response bodies of the prediction API: validated once, here, at the edge."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from modelcycle.lake.schema import VALUE_MAX, VALUE_MIN

# The models compute in float32: a larger magnitude would be scored as ±infinity.
FLOAT32_MAX = float(np.finfo(np.float32).max)

# null is a missing value (the models were trained with missing values); NaN and ±inf are not
# valid JSON numbers, and `allow_inf_nan=False` refuses the Python parser's extensions for them.
# Strict: `true` or "1.5" is a client's mistake, not the number 1.0 or 1.5.
FeatureValue = Annotated[float, Strict(), Field(ge=-FLOAT32_MAX, le=FLOAT32_MAX)] | None
# A raw sensor reading, in the physical range the lake accepts.
ReadingValue = Annotated[float, Strict(), Field(ge=VALUE_MIN, le=VALUE_MAX)] | None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


BodyT = TypeVar("BodyT", bound=BaseModel)


def parse_json_body(schema: type[BodyT], raw: bytes) -> BodyT:
    """Bytes to a validated body in one pass; errors look like FastAPI's own (422, `body.…`)."""
    try:
        return schema.model_validate_json(raw)
    except ValidationError as error:
        problems = [
            {**p, "loc": ("body", *p["loc"]), "msg": _readable(p)}
            for p in error.errors(include_url=False)
        ]
        raise RequestValidationError(problems) from error


def _readable(problem: Any) -> str:
    """pydantic's message, but the float32 bound as 3.4e+38 rather than 39 digits."""
    bound = (problem.get("ctx") or {}).get("le", (problem.get("ctx") or {}).get("ge"))
    if isinstance(bound, float) and abs(bound) == FLOAT32_MAX:
        side = "less" if "le" in problem["ctx"] else "greater"
        return f"Input should be {side} than or equal to {bound:.2g} (the float32 range)"
    return str(problem["msg"])


def json_body_spec(schema: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body for a route that parses its body with `parse_json_body`."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema.model_json_schema()}},
        }
    }


class PredictRequest(_Body):
    """Feature vectors, either positional (`instances`) or by name (`records`)."""

    instances: list[list[FeatureValue]] | None = Field(
        default=None,
        min_length=1,
        description="Rows of feature values in the order of the model's `features`.",
        examples=[[[60.0, 1.2, 0.1]]],
    )
    records: list[dict[str, FeatureValue]] | None = Field(
        default=None,
        min_length=1,
        description="Rows as objects keyed by feature name.",
    )

    @model_validator(mode="after")
    def _exactly_one_form(self) -> PredictRequest:
        if (self.instances is None) == (self.records is None):
            raise ValueError("give exactly one of `instances` or `records`")
        return self

    @property
    def n_rows(self) -> int:
        return len(self.instances if self.instances is not None else self.records or [])


class PredictResponse(BaseModel):
    model: str
    version: str
    alias: str
    predictions: list[float] = Field(
        description="Probability of a fault (classifier) or anomaly score (detector), per row."
    )


class DeviceReadings(_Body):
    """One device's raw readings: timestamps and, per sensor, one value (or null) per timestamp."""

    timestamps: list[datetime] = Field(min_length=1, description="Reading times (UTC).")
    values: dict[str, list[ReadingValue]] = Field(
        min_length=1, description="Sensor name → readings, aligned with `timestamps`."
    )


class ModelScores(BaseModel):
    model: str
    version: str
    predictions: list[float]


class DevicePrediction(BaseModel):
    device_id: str
    windows: list[datetime] = Field(
        description="Start of each hourly window that was scored (UTC)."
    )
    models: list[ModelScores]


class ModelPublic(BaseModel):
    """A served model as `/v1/models` shows it."""

    name: str
    alias: str
    version: str | None
    loaded_at: datetime | None
    sha256: str | None
    run_id: str | None
    trained_at: datetime | None = Field(
        description="When the served version was trained: the age the stale alert measures."
    )
    age_hours: float | None = Field(
        description="Hours since `trained_at` (`modelcycle_model_age_seconds` in /metrics)."
    )
    source: str | None = Field(description="`registry`, or `cache` when started offline.")
    features: list[str]
    last_checked: datetime | None
    last_error: str | None
    reloads: dict[str, int]
    cache_error: str | None = Field(
        default=None, description="The last failure of the local serving cache for this model."
    )


class TaskPublic(BaseModel):
    """A background task (registry poll, accuracy poll, prediction-log writer) and its health."""

    name: str
    running: bool
    stopped: str | None = Field(description="Why the task ended while the API ran, if it did.")
    failing: bool = Field(description="Its last rounds failed in a row (see /readyz).")
    errors: int
    consecutive_failures: int
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None


class PredictionLogPublic(BaseModel):
    rows_written: int
    rows_dropped: int
    buffered_rows: int
    max_buffered_rows: int


class ShadowModelPublic(BaseModel):
    name: str
    version: str | None = Field(description="The challenger version held; None when none is.")
    champion_version: str | None
    scoring: bool = Field(description="False when idle: no challenger, or it is the champion.")
    last_checked: datetime | None
    last_error: str | None = Field(description="Why the challenger could not be loaded.")


class ShadowPublic(BaseModel):
    """Shadow scoring (MODELCYCLE_SERVING_SHADOW): the challenger scoring live traffic."""

    alias: str
    state: Literal["scoring", "idle"]
    models: list[ShadowModelPublic]
    requests_scored: int
    rows_scored: int
    batches: int = Field(description="Batches of queued requests scored (one call per model).")
    rows_written: int
    dropped: int = Field(description="Requests not shadowed because the queue was full.")
    skipped: int = Field(description="Requests not shadowed: not sampled (SHADOW_SAMPLE).")
    shed: int = Field(
        description="Requests not shadowed: the API was saturated (SHADOW_SHED_ABOVE)."
    )
    queued: int
    max_queued: int
    errors: int
    lost: int = Field(description="Requests sent to a shadow worker that died with them.")
    last_error: str | None = Field(
        description="The last failed shadow scoring, or how the worker process last died."
    )
    last_error_at: datetime | None
    worker_pid: int | None = Field(description="The worker process; None while it restarts.")
    worker_restarts: int = Field(description="Times the worker process was started again.")
    worker_rss_bytes: int | None = Field(description="The worker's resident memory.")


class ModelsPublic(BaseModel):
    models: list[ModelPublic]
    tasks: list[TaskPublic] = Field(default_factory=list)
    prediction_log: PredictionLogPublic | None = None
    shadow: ShadowPublic | None = Field(default=None, description="None when shadow is off.")


class ErrorPublic(BaseModel):
    detail: str


class Health(BaseModel):
    status: str
    missing: list[str] = Field(default_factory=list)
    problems: list[str] = Field(
        default_factory=list, description="What fails, by name only: details are in /v1/models."
    )


class WebhookAccepted(BaseModel):
    status: str
    model: str | None = None
