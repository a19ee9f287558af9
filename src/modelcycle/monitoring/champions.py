"""The version behind an alias, opened for batch work: verified ONNX plus what its run recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from modelcycle.errors import RegistryError
from modelcycle.registry.connection import first_line
from modelcycle.registry.loading import LoadedModel, RegistrySource, load_verified_model


@dataclass(frozen=True)
class ServedVersion:
    """A model version as monitoring sees it: the scorer, its threshold and training window."""

    model: LoadedModel
    role: str
    decision_threshold: float
    window_start: datetime | None
    window_end: datetime | None

    @property
    def name(self) -> str:
        return self.model.record.name

    @property
    def version(self) -> str:
        return self.model.record.version

    @property
    def training_days(self) -> list[date]:
        """The days the version was trained on (its reference for drift)."""
        if self.window_start is None or self.window_end is None:
            return []
        first = self.window_start.date()
        last = (self.window_end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def open_version(
    source: RegistrySource, client: MlflowClient, name: str, alias: str
) -> ServedVersion:
    """Resolve `name@alias`, download and verify its ONNX artifact, read its run's parameters."""
    record = source.resolve(name, alias)
    model = load_verified_model(
        record, source.fetch(record), source="registry", now=datetime.now(UTC)
    )
    try:
        params = client.get_run(record.run_id).data.params if record.run_id else {}
    except MlflowException as error:
        raise RegistryError(
            f"reading the run of {name} v{record.version}: {first_line(error)}"
        ) from error
    return ServedVersion(
        model=model,
        role=alias,
        decision_threshold=float(params.get("decision_threshold", 0.5)),
        window_start=_parse_time(params.get("window_start")),
        window_end=_parse_time(params.get("window_end")),
    )
