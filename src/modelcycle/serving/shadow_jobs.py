"""What crosses the pipe between the API and its shadow worker process: frames, never pickle.

A frame is two little-endian u32 lengths, an orjson header and a payload of raw bytes. A batch of
answered requests travels as one frame: the header lists each request (id, time, the champion's
versions and scores, device id and windows) and what its data is, each request's right after
the one before in the payload: the champion's parsed float32 matrix (read back with
`np.frombuffer`, no parsing) or, when the challenger needs other columns or it is a device
request, the request's body as received. Each request is encoded where it was answered
(`encode_job`); a frame only joins them (`jobs_frame`).
The worker answers with small header-only frames (status). Nothing here runs code it receives.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import numpy as np
import orjson
from numpy.typing import NDArray

from modelcycle.errors import ModelcycleError

_LENGTHS = struct.Struct("<II")
MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_PAYLOAD_BYTES = 1024 * 1024 * 1024
Buffer = bytes | memoryview


class FrameError(ModelcycleError):
    """A frame that is cut short or does not say what a frame must."""


@dataclass(frozen=True)
class ChampionAnswer:
    """What the champion answered for one model of a request."""

    model: str
    version: str
    scores: list[float]


@dataclass(frozen=True)
class ShadowJob:
    """One answered request: its body, and the champion's answer for each model it scored."""

    raw: bytes
    answers: tuple[ChampionAnswer, ...]
    request_id: str | None
    predicted_at: datetime
    device_id: str | None = None  # a device request: the body is raw readings, not features
    windows: list[datetime] | None = None
    # The champion's parsed feature matrix and its column order: a challenger with the same
    # features scores it as is, without parsing the body again.
    matrix: NDArray[np.float32] | None = None
    features: tuple[str, ...] = ()
    features_digest: str = ""  # what crosses the pipe instead of the column names


_DIGESTS: dict[int, tuple[tuple[str, ...], str]] = {}


def features_digest(features: tuple[str, ...]) -> str:
    """A short name for a column order: the worker compares it with its challenger's. Kept per
    tuple (a served model's features are one object), so a request pays a look-up, not a hash."""
    known = _DIGESTS.get(id(features))
    if known is not None and known[0] is features:
        return known[1]
    digest = hashlib.sha256("\n".join(features).encode()).hexdigest()[:16]
    if len(_DIGESTS) > 64:
        _DIGESTS.clear()
    _DIGESTS[id(features)] = (features, digest)
    return digest


def write_frame(
    stream: IO[bytes], header: dict[str, Any] | bytes, payload: Sequence[Buffer] = ()
) -> None:
    """One frame, whole (a buffered stream writes it all, blocking while the pipe is full).
    `header` may come encoded already (`jobs_frame`)."""
    encoded = (
        header
        if isinstance(header, bytes)
        else orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)
    )
    stream.write(_LENGTHS.pack(len(encoded), sum(len(part) for part in payload)))
    stream.write(encoded)
    for part in payload:
        stream.write(part)
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size) if size else b""
    if len(data) != size:
        raise FrameError(f"frame cut short: {len(data)} of {size} bytes")
    return data


def read_frame(stream: IO[bytes]) -> tuple[dict[str, Any], bytes] | None:
    """The next frame, or None when the other side closed the pipe between frames."""
    lengths = stream.read(_LENGTHS.size)
    if not lengths:
        return None
    if len(lengths) != _LENGTHS.size:
        raise FrameError("frame cut short in its lengths")
    header_size, payload_size = _LENGTHS.unpack(lengths)
    if header_size > MAX_HEADER_BYTES or payload_size > MAX_PAYLOAD_BYTES:
        raise FrameError(f"frame too large: {header_size} + {payload_size} bytes")
    header = orjson.loads(_read_exactly(stream, header_size))
    if not isinstance(header, dict) or not isinstance(header.get("kind"), str):
        raise FrameError("frame header is not an object with a kind")
    return header, _read_exactly(stream, payload_size)


@dataclass(frozen=True, slots=True)
class EncodedJob:
    """One request as it will cross the pipe: its header entry and its data, nothing shared."""

    entry: bytes  # orjson: [request id, time, answers, device id, windows, where]
    data: Buffer
    rows: int


def encode_job(job: ShadowJob, digests: Mapping[str, str]) -> EncodedJob:
    """One request's part of a `jobs` frame, encoded where it was answered (a few µs of C), so
    that the thread that writes frames only joins bytes. `digests`: the challenger's column
    order per model, as last reported: a request whose champion used the same columns sends its
    matrix, any other its body."""
    digest = features_digest(job.features) if job.matrix is not None else ""
    data: Buffer
    if job.matrix is not None and digests.get(job.answers[0].model) == digest:
        matrix = np.ascontiguousarray(job.matrix, dtype=np.float32)
        data = memoryview(matrix.data).cast("B")
        where: list[Any] = ["matrix", matrix.shape[0], matrix.shape[1], digest]
    else:
        data = job.raw
        where = ["raw", len(job.raw)]
    answers = [[a.model, a.version, a.scores] for a in job.answers]
    entry = orjson.dumps(
        [job.request_id, job.predicted_at, answers, job.device_id, job.windows, where],
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    rows = max((len(answer.scores) for answer in job.answers), default=0)
    return EncodedJob(entry, data, rows)


def jobs_frame(encoded: Sequence[EncodedJob]) -> tuple[bytes, list[Buffer]]:
    """The header (encoded) and payload of a `jobs` frame: the requests in order, each request's
    data right after the one before (`decode_jobs` adds up the sizes)."""
    header = b'{"kind":"jobs","jobs":[' + b",".join(job.entry for job in encoded) + b"]}"
    return header, [job.data for job in encoded]


def encode_jobs(
    jobs: Sequence[ShadowJob], digests: Mapping[str, str]
) -> tuple[bytes, list[Buffer]]:
    """A whole `jobs` frame at once."""
    return jobs_frame([encode_job(job, digests) for job in jobs])


def decode_jobs(header: dict[str, Any], payload: bytes) -> list[ShadowJob]:
    """The requests of a `jobs` frame; the matrices are views into `payload`, not copies."""
    jobs = []
    offset = 0
    for request_id, at, answers, device_id, windows, where in header["jobs"]:
        champion = tuple(ChampionAnswer(m, v, s) for m, v, s in answers)
        predicted_at = datetime.fromisoformat(at)
        parsed = [datetime.fromisoformat(w) for w in windows] if windows is not None else None
        if where[0] == "matrix":
            _, rows, columns, digest = where
            matrix = np.frombuffer(payload, np.float32, rows * columns, offset)
            offset += matrix.nbytes
            job = ShadowJob(
                b"",
                champion,
                request_id,
                predicted_at,
                device_id,
                parsed,
                matrix=matrix.reshape(rows, columns),
                features_digest=digest,
            )
        else:
            _, size = where
            raw = payload[offset : offset + size]
            offset += size
            job = ShadowJob(raw, champion, request_id, predicted_at, device_id, parsed)
        jobs.append(job)
    if offset != len(payload):
        raise FrameError(f"frame payload holds {len(payload)} bytes, its requests {offset}")
    return jobs
