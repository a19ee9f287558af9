"""The one place configuration is read: environment variables prefixed `MODELCYCLE_`.

Embedded defaults need no server: MLflow on SQLite under the home folder with a local artifact
folder, and the lake as local Parquet. Production points the URLs at PostgreSQL, S3 or GCS.
An environment's profile (`<profiles dir>/<environment>.env`) fills in what the variables leave
unset (`load_settings`); another environment's settings come from its profile (`settings_for`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelcycle.errors import InvalidInputError
from modelcycle.folders import not_a_folder_reason

# What the metric gate compares unless `MODELCYCLE_GATE_METRICS` says otherwise: accuracy because
# users ask for it, PR-AUC because accuracy rewards a model that never predicts a fault.
DEFAULT_GATE_METRICS = ("accuracy", "pr_auc")
# Metrics where higher is better that training and monitoring measure (training/metrics.py).
GATEABLE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc")

Environment = Literal["local", "dev", "prod"]
ENVIRONMENTS: tuple[Environment, ...] = ("local", "dev", "prod")
ENV_PREFIX = "MODELCYCLE_"
# What another environment's profile must set itself: inheriting them from this process would
# point "prod" at this environment's registry or store.
PROFILE_REQUIRED = ("tracking_uri", "database_url")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """Typed settings, built once at the edge (CLI, API, Dagster) and passed down."""

    model_config = SettingsConfigDict(env_prefix="MODELCYCLE_", extra="ignore", frozen=True)

    environment: Environment = "local"
    home: Path = Field(default=Path(".modelcycle"), description="Folder for embedded state.")
    profiles_dir: Path | None = Field(
        default=None, description="Folder of `<environment>.env` profiles; <home>/profiles."
    )
    lake_url: str | None = Field(default=None, description="Root of the Parquet lake.")
    raw_url: str | None = Field(default=None, description="Root of the raw device logs.")
    tracking_uri: str | None = Field(default=None, description="MLflow tracking URI.")
    registry_uri: str | None = Field(default=None, description="MLflow registry URI.")
    artifact_url: str | None = Field(
        default=None, description="Where a new MLflow experiment keeps its artifacts."
    )
    experiment_name: str = "modelcycle"
    classifier_model_name: str = "sensor-fault-classifier"
    anomaly_model_name: str = "sensor-anomaly-detector"
    log_format: Literal["auto", "console", "json"] = "auto"
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, moto); AWS when unset."
    )
    gcs_endpoint_url: str | None = Field(
        default=None, description="GCS endpoint (e.g. an emulator), used without credentials."
    )
    ingest_batch_files: int = Field(default=100, ge=1, description="Device logs per ingest batch.")
    serving_alias: str = Field(default="champion", description="Registry alias the API serves.")
    serving_poll_seconds: float = Field(
        default=30.0, gt=0, description="How often the API asks the registry for a new version."
    )
    serving_max_rows: int = Field(default=1000, ge=1, description="Rows per prediction request.")
    serving_max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest request body the API reads."
    )
    serving_max_concurrent: int = Field(
        default=4, ge=1, description="Large requests parsed and scored at once, in worker threads."
    )
    serving_busy_wait_seconds: float = Field(
        default=5.0, ge=0, description="How long a large request waits for a work slot (503 after)."
    )
    serving_allow_open: bool = Field(
        default=False, description="Serve /v1/* without API keys on a non-loopback address."
    )
    serving_cache_dir: Path | None = Field(
        default=None, description="Verified model artifacts, for starting without the registry."
    )
    serving_log_flush_seconds: float = Field(
        default=2.0, gt=0, description="How often the API writes its prediction log to the lake."
    )
    serving_shadow: bool = Field(
        default=False,
        description="Also score requests with the challenger, off the response path, to the lake.",
    )
    serving_shadow_alias: str = Field(
        default="challenger", description="Registry alias shadow scoring follows."
    )
    serving_shadow_queue: int = Field(
        default=1000, ge=1, description="Requests waiting for shadow scoring; more are dropped."
    )
    serving_shadow_max_delay_seconds: float = Field(
        default=0.1,
        ge=0,
        description="How long the shadow worker lets requests accumulate into one batch.",
    )
    serving_shadow_shed_above: float = Field(
        default=0.9,
        ge=0,
        description="The API's CPU use (cores) above which shadow scoring keeps one request in "
        "10, the others counted as shed: a saturated API loses less to the shadow worker.",
    )
    serving_shadow_sample: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Fraction of requests shadow scoring scores; the others are counted skipped.",
    )
    api_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated API keys of the API's service callers (role operator).",
    )
    serving_key_refresh_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often the API re-reads users' API keys; a revoked key stops within it.",
    )
    dashboard_cache_seconds: float = Field(
        default=15.0,
        ge=0,
        description="How long the dashboard keeps its registry reads; moves made through this "
        "API or announced by the webhook show at once (0: read the registry on every page).",
    )
    user: str | None = Field(
        default=None, description="Who the CLI acts as when a deciding command has no --as."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where people reach the API; links in notifications start with it.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="Shared secret of the MLflow registry webhook (HMAC)."
    )
    metrics_key: SecretStr | None = Field(
        default=None, description="Bearer key /metrics asks for; /metrics is open when unset."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the monitoring store; SQLite under the home by default.",
    )
    orchestration_start: date = Field(
        default=date(2026, 1, 1), description="First day of the Dagster daily partitions."
    )
    schedule_time: str = Field(
        default="02:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Daily run, HH:MM."
    )
    schedule_timezone: str = Field(default="UTC", description="Timezone of the daily schedule.")
    training_window_days: int = Field(default=7, ge=1, le=366, description="Days per training.")
    training_max_runtime_seconds: int = Field(
        default=3600, ge=1, description="Training SLA: a run past it is failed by Dagster."
    )
    gate_margin: float = Field(
        default=0.02, ge=0, le=1, description="How much worse than the champion a model may be."
    )
    gate_customer_margin: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="How much lower than the champion's one customer's accuracy may be.",
    )
    gate_metrics: str = Field(
        default=",".join(DEFAULT_GATE_METRICS),
        description="Comma-separated metrics the gate compares with the champion's, each "
        f"higher-is-better: {', '.join(GATEABLE_METRICS)}.",
    )
    quality_min_row_share: float = Field(
        default=0.9, ge=0, le=1, description="Rows written / (devices × 1440) a day needs."
    )
    quality_max_quarantine_share: float = Field(default=0.05, ge=0, le=1)
    quality_max_null_share: float = Field(default=0.2, ge=0, le=1)
    release_auto_approve: bool | None = Field(
        default=None,
        description="The system approves a request whose gates all pass; default: on in local "
        "and dev, off in prod.",
    )
    dagster_home: Path | None = Field(default=None, description="DAGSTER_HOME; <home>/dagster.")
    dagster_postgres_url: SecretStr | None = Field(
        default=None,
        description="Dagster storage on PostgreSQL (postgresql+psycopg2://…); SQLite when unset.",
    )
    alert_rules: Path | None = Field(
        default=None, description="Alert rules YAML; the shipped default rules when unset."
    )
    session_secret: SecretStr | None = Field(
        default=None,
        description="Signs the dashboard's session cookies; generated under the home in local, "
        "required elsewhere.",
    )
    session_max_age_seconds: int = Field(
        default=8 * 3600, ge=60, description="How long a dashboard session lasts without a visit."
    )
    session_cookie_secure: bool = Field(
        default=False, description="Send the session cookie over HTTPS only (set behind TLS)."
    )
    signin_max_attempts: int = Field(
        default=5, ge=1, description="Failed sign-ins per user and address before a pause."
    )
    signin_window_seconds: float = Field(
        default=300.0, gt=0, description="The window the failed sign-ins are counted over."
    )
    dagster_url: str = Field(
        default="http://127.0.0.1:3000", description="The Dagster UI the dashboard links to."
    )
    mlflow_url: str | None = Field(
        default=None,
        description="The MLflow UI the dashboard links to; the tracking URI when it is a server.",
    )

    @field_validator("home")
    @classmethod
    def _home_can_be_a_folder(cls, value: Path) -> Path:
        """A file where the home should be fails here, in one line, not deep in a command."""
        home = value.expanduser()
        reason = not_a_folder_reason(home)
        if reason is not None:
            raise ValueError(reason)
        return home

    @field_validator("gate_metrics")
    @classmethod
    def _known_gate_metrics(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        if not names:
            raise ValueError("name at least one metric")
        unknown = [name for name in names if name not in GATEABLE_METRICS]
        if unknown:
            raise ValueError(
                f"unknown metric {unknown[0]!r} (one of {', '.join(GATEABLE_METRICS)})"
            )
        return ",".join(dict.fromkeys(names))

    @property
    def gated_metrics(self) -> tuple[str, ...]:
        """`gate_metrics` as the gate takes them."""
        return tuple(self.gate_metrics.split(","))

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not a log level: use one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("webhook_secret", "metrics_key", "session_secret")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty HMAC key or bearer key is one anybody can use: refuse it rather than
        # accept forged webhooks. Unset the variable to turn the feature off instead.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is empty; set a real secret or unset the variable")
        return value

    @property
    def api_key_set(self) -> frozenset[str]:
        """The configured API keys; empty means the API is open (local use only)."""
        if self.api_keys is None:
            return frozenset()
        return frozenset(
            k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()
        )

    @property
    def resolved_release_auto_approve(self) -> bool:
        if self.release_auto_approve is not None:
            return self.release_auto_approve
        return self.environment != "prod"

    @property
    def resolved_profiles_dir(self) -> Path:
        return self.profiles_dir or self.home / "profiles"

    @property
    def resolved_serving_cache_dir(self) -> Path:
        return self.serving_cache_dir or self.home / "serving-cache"

    @property
    def resolved_dagster_home(self) -> Path:
        return (self.dagster_home or self.home / "dagster").resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'modelcycle.db').resolve()}"

    @property
    def resolved_lake_url(self) -> str:
        return self.lake_url or str((self.home / "lake").resolve())

    @property
    def resolved_raw_url(self) -> str:
        return self.raw_url or str((self.home / "raw").resolve())

    @property
    def resolved_tracking_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def resolved_artifact_url(self) -> str:
        return self.artifact_url or (self.home / "artifacts").resolve().as_uri()

    @property
    def model_names(self) -> tuple[str, str]:
        return (self.classifier_model_name, self.anomaly_model_name)


def _invalid(error: ValidationError, where: str) -> InvalidInputError:
    """pydantic's first complaint as one line naming the variable (and the profile, if any)."""
    problem = error.errors()[0]
    name = ENV_PREFIX + ".".join(str(part) for part in problem["loc"]).upper()
    message = str(problem["msg"]).removeprefix("Value error, ")  # pydantic's prefix to our own
    return InvalidInputError(f"setting {name}{where}: {message}")


def profile_path(settings: Settings, environment: str) -> Path:
    return settings.resolved_profiles_dir / f"{environment}.env"


def load_settings() -> Settings:
    """This process's settings: its variables, over its environment's profile when there is one.

    Without a profile file this is exactly `Settings()`.
    """
    try:
        plain = Settings()
    except ValidationError as error:
        raise _invalid(error, "") from error
    path = profile_path(plain, plain.environment)
    if not path.is_file():
        return plain
    read_profile(path)  # a name that is no setting is refused here too
    try:
        return Settings(_env_file=path, environment=plain.environment)
    except ValidationError as error:
        raise _invalid(error, f" (variables or profile {path})") from error


def read_profile(path: Path) -> dict[str, str]:
    """A profile's `MODELCYCLE_*` values by field name; a name no setting has is refused (a typo
    in a profile would otherwise be a setting silently left at its default)."""
    try:
        raw = dotenv_values(path)
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"profile {path} cannot be read: {error}") from error
    values: dict[str, str] = {}
    for key, value in raw.items():
        field = key.upper().removeprefix(ENV_PREFIX).lower()
        if not key.upper().startswith(ENV_PREFIX) or field not in Settings.model_fields:
            raise InvalidInputError(f"profile {path}: {key} is not a modelcycle setting")
        if field == "environment":
            raise InvalidInputError(f"profile {path}: the file name says the environment")
        if value is not None:
            values[field] = value
    return values


def settings_for(environment: str, current: Settings) -> Settings:
    """Another environment's settings (the target of a promotion), from its profile.

    The profile wins over this process's variables, which belong to the current environment;
    what the profile leaves unset (model names, the S3 endpoint) is inherited from them. The
    profile must name its own registry and store: inheriting those would write to this one.
    """
    if environment not in ENVIRONMENTS:
        raise InvalidInputError(
            f"environment {environment!r}: use one of {', '.join(ENVIRONMENTS)}"
        )
    path = profile_path(current, environment)
    if not path.is_file():
        raise InvalidInputError(
            f"no profile for {environment}: create {path} (see docs/configuration.md)"
        )
    values = read_profile(path)
    missing = [ENV_PREFIX + f.upper() for f in PROFILE_REQUIRED if not values.get(f)]
    if missing:
        raise InvalidInputError(f"profile {path} must set {', '.join(missing)}")
    try:
        return Settings(environment=environment, **values)  # type: ignore[arg-type]
    except ValidationError as error:
        raise _invalid(error, f" (profile {path})") from error
