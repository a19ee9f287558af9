"""A local cache of verified artifacts, so the API can start and serve while the registry is down.

Per model: `<name>/<version>.onnx` and `<name>/<alias>.json` (the record the registry gave when the
artifact was verified). The hash is checked again on every load from the cache. The cache is an
optimisation: an entry that cannot be read is reported as a `CacheEntryError` and treated as
missing, and a write that fails is reported as a `StorageError`; neither may stop the API.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

import structlog

from modelcycle.errors import StorageError
from modelcycle.registry.loading import VersionRecord

log = structlog.get_logger(__name__)

RECORD_SUFFIX = ".json"
ARTIFACT_SUFFIX = ".onnx"


class CacheEntryError(StorageError):
    """A cached record or artifact exists but cannot be read or makes no sense (truncated, …)."""


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _safe(part: str) -> str:
    """Registry names may hold characters a path must not (`/`); keep the cache flat."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in part)


def _os_problem(error: OSError) -> str:
    return f"{type(error).__name__}: {error.strerror or error}"


def _parse_record(text: str) -> VersionRecord:
    """The record a cache file holds; ValueError, KeyError or TypeError when it is not one."""
    document = json.loads(text)
    fields = {key: document[key] for key in ("name", "version", "alias", "run_id", "sha256")}
    if not all(isinstance(value, str) for value in fields.values()):
        raise TypeError("record fields must be strings")
    return VersionRecord(**fields, trained_at=datetime.fromisoformat(document["trained_at"]))


class ArtifactCache:
    """Verified ONNX bytes and their records, under one folder."""

    def __init__(self, root: Path):
        self.root = root

    def _model_dir(self, name: str) -> Path:
        return self.root / _safe(name)

    def _record_path(self, name: str, alias: str) -> Path:
        return self._model_dir(name) / f"{_safe(alias)}{RECORD_SUFFIX}"

    def _artifact_path(self, name: str, version: str) -> Path:
        return self._model_dir(name) / f"{_safe(version)}{ARTIFACT_SUFFIX}"

    def save(self, record: VersionRecord, data: bytes) -> None:
        """Artifact first, then the record pointing at it: a crash between leaves the old pair.

        Raises StorageError when the folder cannot be written (full, read-only, not a folder).
        """
        document = {
            "name": record.name,
            "version": record.version,
            "alias": record.alias,
            "run_id": record.run_id,
            "sha256": record.sha256,
            "trained_at": record.trained_at.isoformat(),
        }
        artifact = self._artifact_path(record.name, record.version)
        try:
            _write_atomically(artifact, data)
            _write_atomically(
                self._record_path(record.name, record.alias), json.dumps(document).encode()
            )
        except OSError as error:
            raise StorageError(
                f"serving cache write of {record.name} v{record.version} to {artifact.parent} "
                f"failed: {_os_problem(error)}"
            ) from error

    def load(self, name: str, alias: str) -> tuple[VersionRecord, bytes] | None:
        """The last verified version behind `alias`, or None when nothing was cached.

        Raises CacheEntryError when an entry is there but unreadable or malformed.
        """
        record_path = self._record_path(name, alias)
        try:
            text = record_path.read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise CacheEntryError(f"serving cache record {record_path}: {error}") from error
        try:
            record = _parse_record(text)
        except (ValueError, KeyError, TypeError) as error:
            raise CacheEntryError(
                f"serving cache record {record_path} is malformed: {type(error).__name__}: {error}"
            ) from error
        artifact = self._artifact_path(name, record.version)
        try:
            return record, artifact.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise CacheEntryError(
                f"serving cache artifact {artifact}: {_os_problem(error)}"
            ) from error

    def prune(self, name: str, keep: set[str]) -> list[str]:
        """Remove the cached artifacts of `name` except the versions in `keep` and any version a
        record (of any alias) still points at; returns the versions removed.

        Raises StorageError when a file cannot be listed or removed.
        """
        folder = self._model_dir(name)
        kept = {_safe(version) for version in keep}
        removed: list[str] = []
        try:
            for path in folder.glob(f"*{RECORD_SUFFIX}"):
                try:
                    kept.add(_safe(_parse_record(path.read_text()).version))
                except (OSError, ValueError, KeyError, TypeError):
                    continue  # an unreadable record keeps nothing; `load` reports it
            for path in folder.glob(f"*{ARTIFACT_SUFFIX}"):
                if path.name.startswith(".") or path.stem in kept:
                    continue  # a temporary file of a write in progress, or a kept version
                path.unlink(missing_ok=True)
                removed.append(path.stem)
        except OSError as error:
            raise StorageError(
                f"serving cache clean-up in {folder} failed: {_os_problem(error)}"
            ) from error
        return sorted(removed)
