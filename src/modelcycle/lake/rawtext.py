"""A raw log as text, the way real devices write it, made plain before it is parsed.

Devices' files differ from the simulator's: gzip compression, a UTF-8 byte-order mark, CRLF or
bare-CR line endings (mixed, even), quoted fields. CSV readers are fast on plain LF text but
misread some of these (DuckDB's dropped the rows of a CRLF file; a bare CR splits a line), so
each file is looked at here first with a few byte scans. Most files pass as they are; the others
get a plain copy that keeps every line on its line number, so a refused line is still reported
where it is in the original file. The physical line count made here, on the bytes, is what the
ingest report is checked against.
"""

from __future__ import annotations

import csv
import gzip
import mmap
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

GZIP_SUFFIX = ".gz"
UTF8_BOM = b"\xef\xbb\xbf"
_HEADER_LIMIT = 64 * 1024
_NEWLINE = 0x0A
_COMMA = 0x2C

# Variants, as counted in the ingest report (`file_variants`).
GZIP = "gzip"
BOM = "UTF-8 BOM"
CRLF_ENDINGS = "CRLF line endings"
CR_ENDINGS = "CR line endings"
QUOTED_FIELDS = "quoted fields"


class UnreadableLogError(Exception):
    """The file has nothing a parser could read; `reason` says why, for the quarantine."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LogText:
    header: str
    lines: int
    commas: int  # in the whole text: lets the parser prove no line has too many fields
    variants: tuple[str, ...]
    plain: bytes | None  # LF text to parse instead of the file; None: the file is plain already
    newlines: npt.NDArray[np.int64] = field(compare=False, repr=False)  # offsets, in that text


def newline_offsets(text: bytes | mmap.mmap) -> npt.NDArray[np.int64]:
    """Where each newline of LF text is: its line count, and a line found without a scan."""
    view = np.frombuffer(text, dtype=np.uint8)
    offsets = np.flatnonzero(view == _NEWLINE)
    del view  # a mapped file cannot be closed while a view of it is alive
    return offsets


def count_lines(text: bytes | mmap.mmap, newlines: npt.NDArray[np.int64]) -> int:
    """Physical lines of LF text: one per newline, plus a last line that has none."""
    if not len(text):
        return 0
    return int(newlines.size) + int(text[-1:] != b"\n")


def count_commas(text: bytes | mmap.mmap) -> int:
    view = np.frombuffer(text, dtype=np.uint8)
    commas = int(np.count_nonzero(view == _COMMA))
    del view  # as in count_lines
    return commas


def count_empty_lines(text: bytes) -> int:
    """Lines of LF text with nothing on them (some CSV readers skip those without a trace)."""
    ends = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == _NEWLINE)
    if not ends.size:
        return 0
    return int(ends[0] == 0) + int(np.count_nonzero(np.diff(ends) == 1))


def _unquote_line(line: bytes) -> bytes:
    """`"a","b"` as `a,b`; a line whose quotes are not whole, simple fields stays as it is.

    One line at a time, so an unterminated quote cannot swallow the lines after it (as a CSV
    parser would); a field with a comma or quote inside stays quoted, and the parser refuses it.
    """
    try:
        rows = list(csv.reader([line.decode("utf-8")], strict=True, skipinitialspace=True))
    except (UnicodeDecodeError, csv.Error):
        return line
    if len(rows) != 1 or any("," in field or '"' in field for field in rows[0]):
        return line
    return ",".join(rows[0]).encode("utf-8")


def _unquote(text: bytes) -> bytes:
    lines = text.split(b"\n")
    return b"\n".join(_unquote_line(line) if b'"' in line else line for line in lines)


def _decompress(data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise UnreadableLogError("unreadable file: damaged gzip stream") from error


def _line_endings(data: bytes) -> tuple[bytes, str]:
    """LF text and which endings it had: CRLF only, or bare CRs (alone or mixed)."""
    crlf = data.count(b"\r\n")
    plain = data.replace(b"\r\n", b"\n")
    if crlf == data.count(b"\r"):
        return plain, CRLF_ENDINGS
    return plain.replace(b"\r", b"\n"), CR_ENDINGS


def _header(start: bytes) -> str:
    """The first line, from the first bytes of the text."""
    end = start.find(b"\n")
    first_line = start[:end] if end >= 0 else start
    if b"\x00" in first_line:
        raise UnreadableLogError("unreadable file: binary content")
    try:
        return first_line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UnreadableLogError("unreadable file: not UTF-8 text") from error


def _log_text(text: bytes | mmap.mmap, variants: tuple[str, ...], plain: bytes | None) -> LogText:
    header = _header(text[:_HEADER_LIMIT])
    if not header.strip() and not text[:].strip():
        raise UnreadableLogError("empty file")
    newlines = newline_offsets(text)
    return LogText(
        header=header,
        lines=count_lines(text, newlines),
        commas=count_commas(text),
        variants=variants,
        plain=plain,
        newlines=newlines,
    )


def _plain_text(name: str, data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """LF text without BOM, compression or quotes, and the variants that were undone."""
    variants: list[str] = []
    if name.endswith(GZIP_SUFFIX):
        data = _decompress(data)
        variants.append(GZIP)
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
        variants.append(BOM)
    if b"\r" in data:
        data, endings = _line_endings(data)
        variants.append(endings)
    if b'"' in data:
        unquoted = _unquote(data)
        if unquoted != data:
            data = unquoted
            variants.append(QUOTED_FIELDS)
    return data, tuple(variants)


def _needs_plain_copy(name: str, content: bytes | mmap.mmap) -> bool:
    return (
        name.endswith(GZIP_SUFFIX)
        or content[: len(UTF8_BOM)] == UTF8_BOM
        or content.find(b"\r") >= 0
        or content.find(b'"') >= 0
    )


def read_log(name: str, path: Path) -> LogText:
    """The file's header, physical line count and plain text (when it is not plain already).

    A plain file is only mapped and scanned (a few byte searches and a newline count, no copy):
    this runs on every file of the day, before the parser reads it.
    """
    try:
        with path.open("rb") as handle:
            if not os.fstat(handle.fileno()).st_size:
                raise UnreadableLogError("empty file")
            try:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            except OSError:  # a filesystem that cannot map files: read it instead
                data = handle.read()
            else:
                with mapped:
                    if not _needs_plain_copy(name, mapped):
                        return _log_text(mapped, variants=(), plain=None)
                    data = mapped[:]
    except OSError as error:
        raise UnreadableLogError(f"unreadable file: {error.strerror or error}") from error
    if not _needs_plain_copy(name, data):
        return _log_text(data, variants=(), plain=None)
    text, variants = _plain_text(name, data)
    return _log_text(text, variants, plain=text if variants else None)


def original_lines(name: str, path: Path, numbers: set[int]) -> dict[int, str]:
    """Lines of the file as it is on disk (line endings aside), by 1-based line number."""
    data = path.read_bytes()
    if name.endswith(GZIP_SUFFIX):
        data = _decompress(data)
    data = data.removeprefix(UTF8_BOM)
    if b"\r" in data:
        data = _line_endings(data)[0]
    lines = data.split(b"\n")
    return {
        number: lines[number - 1].decode("utf-8", errors="replace")
        for number in numbers
        if 0 < number <= len(lines)
    }
