"""The alert rules file, as typed models: channels, rules, and how often to remind.

The YAML is parsed by `modelcycle.alerting.rules_file`, which turns a validation error into the
file, line and reason. Secrets never live in the file: channels name the environment variable
that holds them (`secret_env`, `password_env`, `url_env`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Severity = Literal["info", "warning", "critical"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ChannelBase(_Strict):
    customer: str | None = Field(
        default=None,
        description="Only device alerts of this customer reach the channel (customer routing).",
    )
    timeout_seconds: float = Field(default=10.0, gt=0)


class WebhookChannel(_ChannelBase):
    """A JSON POST, its body signed with HMAC-SHA256 when `secret_env` names a secret."""

    type: Literal["webhook"]
    url: str
    secret_env: str | None = None


class SlackChannel(_ChannelBase):
    """A Slack-compatible incoming webhook (`{"text": …}`); the URL is itself the secret."""

    type: Literal["slack"]
    url: str | None = None
    url_env: str | None = None

    @model_validator(mode="after")
    def _one_url(self) -> SlackChannel:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url and url_env")
        return self


class EmailChannel(_ChannelBase):
    """Email over SMTP, with STARTTLS and login when configured."""

    type: Literal["email"]
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    password_env: str | None = None
    sender: str
    to: list[str] = Field(min_length=1)


ChannelConfig = Annotated[WebhookChannel | SlackChannel | EmailChannel, Field(discriminator="type")]


class _RuleBase(_Strict):
    severity: Severity = "warning"
    channels: list[str] = Field(default_factory=list, description="Channel names; none = all.")


class ModelStaleRule(_RuleBase):
    """The serving champion was trained more than `max_age_hours` ago (a fresh challenger that
    was never promoted does not count)."""

    type: Literal["model_stale"]
    max_age_hours: float = Field(default=36.0, gt=0)
    models: list[str] | None = None


class AccuracyRule(_RuleBase):
    """A metric's average over the last `window_days` evaluated days crosses a threshold."""

    type: Literal["accuracy"]
    model: str
    metric: Literal["accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"] = "accuracy"
    threshold: float
    direction: Literal["below", "above"] = "below"
    window_days: int = Field(default=7, ge=1)


class TrainingFailedRule(_RuleBase):
    """The latest training run failed."""

    type: Literal["training_failed"]


class TrainingSlaRule(_RuleBase):
    """The latest training ran past its maximum run time (Dagster stopped it), or no training has
    succeeded today and `deadline` (UTC, HH:MM) has passed.

    It resolves when a training succeeds, even a late one; the history keeps the miss.
    """

    type: Literal["training_sla_missed"]
    deadline: str = Field(default="06:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class DriftRule(_RuleBase):
    """On the latest drift check, more than `max_share` of a model's features drifted."""

    type: Literal["drift"]
    model: str | None = None
    max_share: float = Field(default=0.3, ge=0, le=1)


class DeviceAnomalyRule(_RuleBase):
    """A device's anomaly score stays above `threshold` for `consecutive` windows."""

    type: Literal["device_anomaly"]
    model: str | None = Field(default=None, description="The anomaly detector; settings' default.")
    threshold: float = 0.0
    consecutive: int = Field(default=1, ge=1)


RuleConfig = Annotated[
    ModelStaleRule
    | AccuracyRule
    | TrainingFailedRule
    | TrainingSlaRule
    | DriftRule
    | DeviceAnomalyRule,
    Field(discriminator="type"),
]


class AlertingConfig(_Strict):
    """The whole rules file."""

    renotify_minutes: float = Field(default=240.0, gt=0, description="Remind while firing.")
    retry_attempts: int = Field(default=3, ge=1, le=10)
    retry_backoff_seconds: float = Field(default=1.0, ge=0)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    rules: dict[str, RuleConfig] = Field(default_factory=dict)
