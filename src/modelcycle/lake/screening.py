"""File-level checks before any row is parsed: name, readability and header.

A file that fails here is quarantined whole with one reason; its rows are not parsed, because a
file with a foreign header or binary content would only produce noise row by row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelcycle.lake.schema import DEVICE_FILE_PATTERN, ReadingsSchema, majority_schema

_HEADER_PROBE_BYTES = 64 * 1024


@dataclass(frozen=True)
class RawFile:
    name: str
    path: Path

    @property
    def device_id(self) -> str:
        match = DEVICE_FILE_PATTERN.match(self.name)
        return match.group(1) if match else ""


@dataclass(frozen=True)
class RejectedFile:
    name: str
    reason: str


@dataclass(frozen=True)
class ScreenedDay:
    schema: ReadingsSchema | None
    accepted: list[RawFile]
    rejected: list[RejectedFile]


def _read_header(path: Path) -> tuple[str | None, str | None]:
    """(header, None) or (None, reason)."""
    try:
        with path.open("rb") as handle:
            probe = handle.read(_HEADER_PROBE_BYTES)
    except OSError as error:
        return None, f"unreadable file: {error.strerror or error}"
    if not probe:
        return None, "empty file"
    first_line = probe.split(b"\n", 1)[0].rstrip(b"\r")
    if b"\x00" in probe:
        return None, "unreadable file: binary content"
    try:
        return first_line.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "unreadable file: not UTF-8 text"


def screen_files(files: list[RawFile]) -> ScreenedDay:
    """Split a day's files into parseable ones (sharing the day's schema) and rejected ones."""
    rejected: list[RejectedFile] = []
    headers: dict[str, str] = {}
    candidates: list[RawFile] = []
    for raw_file in files:
        if not DEVICE_FILE_PATTERN.match(raw_file.name):
            rejected.append(RejectedFile(raw_file.name, "file name is not device-NNNN.csv"))
            continue
        header, problem = _read_header(raw_file.path)
        if header is None:
            rejected.append(RejectedFile(raw_file.name, problem or "unreadable file"))
            continue
        headers[raw_file.name] = header
        candidates.append(raw_file)
    schema = majority_schema(list(headers.values()))
    accepted: list[RawFile] = []
    for raw_file in candidates:
        if schema is not None and headers[raw_file.name].strip() == schema.header:
            accepted.append(raw_file)
        else:
            rejected.append(RejectedFile(raw_file.name, "header does not match the day's columns"))
    return ScreenedDay(schema=schema, accepted=accepted, rejected=rejected)
