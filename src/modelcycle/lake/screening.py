"""File-level checks before any row is parsed: name, readability and header.

A file is quarantined whole only when nothing in it can be read: a foreign name, no content, a
first line that is not text, a damaged gzip stream, or a header other than the day's (its columns
are unknown). Anything else is parsed, and what cannot be read in it is quarantined line by line.
Files in a text variant a CSV reader misreads (see `lake.rawtext`) are parsed from a plain copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from modelcycle.lake.rawtext import UnreadableLogError, read_log
from modelcycle.lake.schema import DEVICE_FILE_PATTERN, ReadingsSchema, majority_schema

BAD_NAME = "file name is not device-NNNN.csv or device-NNNN.csv.gz"
OTHER_HEADER = "header does not match the day's columns"


@dataclass(frozen=True)
class RawFile:
    name: str
    path: Path


@dataclass(frozen=True)
class ReadableLog:
    """A file that passed screening: `parse_path` is what is parsed (the file or its copy)."""

    name: str
    source: Path
    parse_path: Path
    lines: int
    variants: tuple[str, ...]
    commas: int = -1  # in the parsed text; -1: unknown, so every line's fields are counted
    # where the parsed text's newlines are (known from screening; None: found when needed)
    newlines: npt.NDArray[np.int64] | None = field(default=None, compare=False, repr=False)

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
    accepted: list[ReadableLog]
    rejected: list[RejectedFile]


def canonical_header(header: str) -> str:
    """The header with the spaces around its names dropped (`a, b` is `a,b`)."""
    return ",".join(name.strip(" \t") for name in header.strip().split(","))


def screen_files(files: list[RawFile], plain_folder: Path) -> ScreenedDay:
    """Split a day's files into parseable ones (sharing the day's schema) and rejected ones.

    Plain copies of the files that need one are written under `plain_folder`, same name.
    """
    rejected: list[RejectedFile] = []
    headers: dict[str, str] = {}
    candidates: list[ReadableLog] = []
    for raw_file in files:
        if not DEVICE_FILE_PATTERN.match(raw_file.name):
            rejected.append(RejectedFile(raw_file.name, BAD_NAME))
            continue
        try:
            text = read_log(raw_file.name, raw_file.path)
        except UnreadableLogError as unreadable:
            rejected.append(RejectedFile(raw_file.name, unreadable.reason))
            continue
        parse_path = raw_file.path
        if text.plain is not None:
            plain_folder.mkdir(parents=True, exist_ok=True)
            parse_path = plain_folder / raw_file.name
            parse_path.write_bytes(text.plain)
        headers[raw_file.name] = canonical_header(text.header)
        candidates.append(
            ReadableLog(
                raw_file.name,
                raw_file.path,
                parse_path,
                text.lines,
                text.variants,
                text.commas,
                text.newlines,
            )
        )
    schema = majority_schema(list(headers.values()))
    accepted: list[ReadableLog] = []
    for log in candidates:
        if schema is not None and headers[log.name] == schema.header:
            accepted.append(log)
        else:
            rejected.append(RejectedFile(log.name, OTHER_HEADER))
    return ScreenedDay(schema=schema, accepted=accepted, rejected=rejected)
