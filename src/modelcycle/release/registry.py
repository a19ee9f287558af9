"""The release's side of the MLflow registry: aliases and decision tags, undone on failure.

MLflow has no transactions, so a move is a sequence of writes; `apply` remembers what each write
replaced and, when one fails, puts back what it had already changed (retrying while the server is
unreachable, up to a deadline) before raising. The caller then never commits its decision. While
the writes are under way a journal (a tag on the registered model) says how to undo them, for
when neither finishing nor undoing was possible.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import requests
import structlog
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from modelcycle.errors import DataNotFoundError, RegistryError
from modelcycle.registry.connection import first_line
from modelcycle.release.rules import CHAMPION, PREVIOUS, AliasPlan

log = structlog.get_logger(__name__)

TAG_PREFIX = "modelcycle.release."
TAG_VALUE_MAX_CHARS = 5000  # MLflow's limit on a model version tag's value
# On the registered model while a decision's writes are under way: what to put back, should the
# process or MLflow die before they are either committed or undone (see `Releases._reconcile`).
JOURNAL_TAG = TAG_PREFIX + "move_in_progress"
JOURNAL_OLD_VALUE_CHARS = 400  # an old tag value longer than this is restored cut short
RESTORE_SECONDS = 30.0  # how long an undo keeps trying an unreachable server
_FAILURES = (MlflowException, requests.RequestException, OSError)
REGISTRY_FAILURES = _FAILURES  # what a registry write raises when MLflow fails
# MLflow's answers for a name or version it has not (or cannot have: a malformed one)
_NOT_THERE = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


class RegistryHalfChangedError(RegistryError):
    """A move's writes could be neither finished nor undone: its journal stays on the model."""


class ReleaseRegistry:
    """Aliases and version tags of registered models, with MLflow's errors as `RegistryError`."""

    def __init__(self, client: MlflowClient | Callable[[], MlflowClient]):
        # A factory defers connecting until a decision needs MLflow: listing requests and
        # reading the trail need only the store.
        self._client = client if isinstance(client, MlflowClient) else None
        self._connect = None if isinstance(client, MlflowClient) else client

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            assert self._connect is not None
            self._client = self._connect()
        return self._client

    def aliases(self, model: str) -> dict[str, str | None]:
        """`champion` and `previous` of the model (None: not set)."""
        try:
            found = self.client.get_registered_model(model).aliases or {}
        except _FAILURES as error:
            if isinstance(error, MlflowException) and error.error_code in _NOT_THERE:
                raise DataNotFoundError(f"no registered model named {model!r}") from error
            raise RegistryError(
                f"reading the aliases of {model} failed: {first_line(error)}"
            ) from error
        return {
            alias: (str(found[alias]) if alias in found else None) for alias in (CHAMPION, PREVIOUS)
        }

    def version_tags(self, model: str, version: str) -> dict[str, str]:
        try:
            found = self.client.get_model_version(model, version)
        except _FAILURES as error:
            if isinstance(error, MlflowException) and error.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise DataNotFoundError(
                    f"{model} has no version {version} in the registry"
                ) from error
            raise RegistryError(
                f"reading {model} version {version} failed: {first_line(error)}"
            ) from error
        return dict(found.tags or {})

    def journal(self, model: str) -> str | None:
        """The journal of a move left unfinished on this model, if any."""
        try:
            tags = self.client.get_registered_model(model).tags or {}
        except _FAILURES as error:
            if isinstance(error, MlflowException) and error.error_code in _NOT_THERE:
                raise DataNotFoundError(f"no registered model named {model!r}") from error
            raise RegistryError(f"reading {model} failed: {first_line(error)}") from error
        return tags.get(JOURNAL_TAG)

    def set_journal(self, model: str, text: str | None) -> None:
        if text is None:
            self.client.delete_registered_model_tag(model, JOURNAL_TAG)
        else:
            self.client.set_registered_model_tag(model, JOURNAL_TAG, text)

    def set_alias(self, model: str, alias: str, version: str | None) -> None:
        if version is None:
            self.client.delete_registered_model_alias(model, alias)
        else:
            self.client.set_registered_model_alias(model, alias, version)

    def set_tag(self, model: str, version: str, key: str, value: str | None) -> None:
        if value is None:
            self.client.delete_model_version_tag(model, version, key)
        else:
            self.client.set_model_version_tag(model, version, key, value)


Step = tuple[str, str, str | None, str | None]  # (kind, key, new value, old value)


@dataclass
class Move:
    """The writes of one decision: the decision's tags on a version, then the aliases."""

    plan: AliasPlan
    version: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    old_tags: Mapping[str, str | None] = field(default_factory=dict)

    def writes(self) -> list[Step]:
        """(kind, key, new value, old value) in the order they are applied."""
        # `champion` (what the API serves) last: a move that stops anywhere before it has not
        # changed what is served, and once it is written the registry has nothing left to do.
        steps: list[Step] = [
            ("tag", key, value, self.old_tags.get(key)) for key, value in self.tags.items()
        ]
        for alias in (PREVIOUS, CHAMPION):
            if alias in self.plan.changes:
                steps.append(("alias", alias, self.plan.after[alias], self.plan.before.get(alias)))
        return steps


def journal_entry(move: Move, *, request_id: int, state: str) -> str:
    """What `undo_journal` needs to put the registry back, and how to tell it was committed."""
    steps = [
        [kind, key, None if old is None else old[:JOURNAL_OLD_VALUE_CHARS]]
        for kind, key, _new, old in move.writes()
    ]
    return json.dumps(
        {"request_id": request_id, "state": state, "version": move.version, "steps": steps}
    )


def read_journal(model: str, text: str) -> tuple[int, str, Move, list[Step]]:
    """(request id, the state its decision leads to, the move, its writes) from a journal."""
    entry = json.loads(text)
    move = Move(AliasPlan(model, {}, {}), entry.get("version"))
    steps: list[Step] = [(kind, key, None, old) for kind, key, old in entry["steps"]]
    return int(entry["request_id"]), str(entry["state"]), move, steps


def prepare(
    registry: ReleaseRegistry, plan: AliasPlan, version: str | None, tags: Mapping[str, str]
) -> Move:
    """The move, with the values its tags will replace (read now, to be put back on failure)."""
    keys = {key: value[:TAG_VALUE_MAX_CHARS] for key, value in tags.items()}
    old = registry.version_tags(plan.model, version) if version is not None and keys else {}
    return Move(plan, version, keys, {key: old.get(key) for key in keys})


def _write(registry: ReleaseRegistry, move: Move, kind: str, key: str, value: str | None) -> None:
    if kind == "alias":
        registry.set_alias(move.plan.model, key, value)
    else:
        assert move.version is not None
        registry.set_tag(move.plan.model, move.version, key, value)


def apply(
    registry: ReleaseRegistry, move: Move, *, restore_seconds: float = RESTORE_SECONDS
) -> None:
    """Make every write of the move, or none: on a failure, undo the done ones and raise."""
    done: list[Step] = []
    for step in move.writes():
        kind, key, value, _old = step
        try:
            _write(registry, move, kind, key, value)
        except _FAILURES as error:
            # The failed write may have reached the server before the connection broke.
            undo(registry, move, [*done, step], restore_seconds=restore_seconds)
            raise RegistryError(
                f"moving the release of {move.plan.model} in the registry failed at "
                f"{kind} {key} ({first_line(error)}); the registry was restored and nothing "
                "was decided"
            ) from error
        done.append(step)


def undo(
    registry: ReleaseRegistry,
    move: Move,
    steps: list[Step] | None = None,
    *,
    restore_seconds: float = RESTORE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Put back what the steps (default: all of the move) replaced, newest first.

    An unreachable server is retried until `restore_seconds` have passed; what still cannot be
    restored then is raised as a `RegistryError` naming the aliases to set by hand.
    """
    pending = list(reversed(move.writes() if steps is None else steps))
    deadline = time.monotonic() + restore_seconds
    pause = 0.5
    while pending:
        kind, key, _new, old = pending[0]
        try:
            _write(registry, move, kind, key, old)
            pending.pop(0)
            continue
        except _FAILURES as error:
            if isinstance(error, MlflowException) and error.error_code == "RESOURCE_DOES_NOT_EXIST":
                pending.pop(0)  # deleting what is not there: already as it was
                continue
            if time.monotonic() >= deadline:
                left = ", ".join(
                    f"{k} {key_} → {old_ or '(none)'}" for k, key_, _n, old_ in pending
                )
                log.error("registry not restored", model=move.plan.model, left=left)
                raise RegistryHalfChangedError(
                    f"the registry of {move.plan.model} is half-changed and could not be "
                    f"restored yet ({first_line(error)}): the next decision on it puts back "
                    f"{left}; nothing was decided"
                ) from error
            log.warning("registry unreachable while restoring, retrying", error=first_line(error))
        sleep(pause)
        pause = min(pause * 2, 5.0)
