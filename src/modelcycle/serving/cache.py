"""A local cache of verified artifacts, so the API can start and serve while the registry is down.

Per model: `<name>/<version>.onnx` and `<name>/<alias>.json` (the record the registry gave when the
artifact was verified). The hash is checked again on every load from the cache.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

from modelcycle.serving.model import VersionRecord


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


class ArtifactCache:
    """Verified ONNX bytes and their records, under one folder."""

    def __init__(self, root: Path):
        self.root = root

    def _record_path(self, name: str, alias: str) -> Path:
        return self.root / _safe(name) / f"{_safe(alias)}.json"

    def _artifact_path(self, name: str, version: str) -> Path:
        return self.root / _safe(name) / f"{_safe(version)}.onnx"

    def save(self, record: VersionRecord, data: bytes) -> None:
        """Artifact first, then the record pointing at it: a crash between leaves the old pair."""
        _write_atomically(self._artifact_path(record.name, record.version), data)
        document = {
            "name": record.name,
            "version": record.version,
            "alias": record.alias,
            "run_id": record.run_id,
            "sha256": record.sha256,
            "trained_at": record.trained_at.isoformat(),
        }
        _write_atomically(
            self._record_path(record.name, record.alias), json.dumps(document).encode()
        )

    def load(self, name: str, alias: str) -> tuple[VersionRecord, bytes] | None:
        """The last verified version behind `alias`, or None when nothing was cached."""
        record_path = self._record_path(name, alias)
        if not record_path.exists():
            return None
        document = json.loads(record_path.read_text())
        record = VersionRecord(
            name=document["name"],
            version=document["version"],
            alias=document["alias"],
            run_id=document["run_id"],
            sha256=document["sha256"],
            trained_at=datetime.fromisoformat(document["trained_at"]),
        )
        artifact = self._artifact_path(name, record.version)
        if not artifact.exists():
            return None
        return record, artifact.read_bytes()
