"""An object store rooted at a URL: local folder, `s3://bucket/prefix` or `gs://bucket/prefix`."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
from botocore.exceptions import BotoCoreError, ClientError
from fsspec.core import url_to_fs

from modelcycle.errors import DataNotFoundError, InvalidInputError, StorageError

_REMOTE_SCHEMES = ("s3", "gs", "gcs")


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "file"


def _storage_options(
    url: str, s3_endpoint_url: str | None, gcs_endpoint_url: str | None
) -> dict[str, Any]:
    scheme = _scheme(url)
    if scheme == "s3" and s3_endpoint_url:
        return {"client_kwargs": {"endpoint_url": s3_endpoint_url}}
    return {}


def _open_filesystem(
    url: str, s3_endpoint_url: str | None, gcs_endpoint_url: str | None
) -> tuple[fsspec.AbstractFileSystem, str]:
    if _scheme(url) in ("gs", "gcs") and gcs_endpoint_url:
        # An emulator or private endpoint: no credentials to look up, and gcsfs's core client,
        # since its experimental default probes bucket types over gRPC for a minute first.
        from gcsfs.core import GCSFileSystem

        anonymous = GCSFileSystem(endpoint_url=gcs_endpoint_url, token="anon")  # noqa: S106
        return anonymous, url.split("://", 1)[1]
    fs, root = url_to_fs(url, **_storage_options(url, s3_endpoint_url, gcs_endpoint_url))
    return fs, str(root)


def describe_storage_failure(url: str, error: BaseException) -> str:
    """One line that names the store and the problem, never a credential."""
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"storage at {url} failed: {type(error).__name__}: {reason}"


def _move_or_copy(source: Path, target: Path) -> None:
    """A rename when both are on one filesystem, else a copy."""
    try:
        source.rename(target)
    except OSError:  # another filesystem (EXDEV), or one that cannot rename
        shutil.copyfile(source, target)


def _fsync(path: Path) -> None:
    """Flush a file's data, or a folder's entries (a rename), to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """Turn the many exception types of fsspec backends into our two domain errors."""
    try:
        yield
    except FileNotFoundError as error:
        raise DataNotFoundError(f"not found: {error.filename or url}") from error
    except (DataNotFoundError, StorageError):
        raise
    except (OSError, ValueError, RuntimeError, BotoCoreError, ClientError) as error:
        raise StorageError(describe_storage_failure(url, error)) from error


class ObjectStore:
    """Relative-path access to one root URL, with atomic writes."""

    def __init__(
        self,
        root_url: str,
        *,
        s3_endpoint_url: str | None = None,
        gcs_endpoint_url: str | None = None,
    ) -> None:
        self.root_url = root_url.rstrip("/") or root_url
        self.scheme = _scheme(root_url)
        with storage_errors(root_url):
            fs, root = _open_filesystem(root_url, s3_endpoint_url, gcs_endpoint_url)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root: str = root.rstrip("/") if root != "/" else root

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    def path(self, relative: str) -> str:
        """The backend path (no scheme) of a relative key."""
        return f"{self.root}/{relative.lstrip('/')}" if relative else self.root

    def url(self, relative: str = "") -> str:
        """The full URL of a relative key, as a user or DuckDB would write it."""
        if self.is_local:
            return self.path(relative)
        return f"{self.scheme}://{self.path(relative)}"

    def exists(self, relative: str) -> bool:
        with storage_errors(self.url(relative)):
            return bool(self.fs.exists(self.path(relative)))

    def stamp(self, relative: str) -> tuple[Any, ...] | None:
        """What changes when the object is replaced (size, time, inode or ETag), None if absent:
        a key for caching what was read from it."""
        with storage_errors(self.url(relative)):
            if self.is_local:
                try:
                    found = Path(self.path(relative)).stat()
                except FileNotFoundError:
                    return None
                return (found.st_size, found.st_mtime_ns, found.st_ino)
            try:
                info = self.fs.info(self.path(relative))
            except FileNotFoundError:
                return None
        keys = ("size", "ETag", "etag", "LastModified", "updated", "generation", "mtime")
        return tuple(str(info.get(k)) for k in keys)

    def glob(self, pattern: str) -> list[str]:
        """Relative keys matching a glob pattern, sorted."""
        with storage_errors(self.url(pattern)):
            found = self.fs.glob(self.path(pattern))
        prefix = self.root.rstrip("/") + "/"
        return sorted(str(p)[len(prefix) :] if str(p).startswith(prefix) else str(p) for p in found)

    def read_bytes(self, relative: str) -> bytes:
        with storage_errors(self.url(relative)):
            data: bytes = self.fs.cat_file(self.path(relative))
            return data

    @contextlib.contextmanager
    def open(self, relative: str) -> Iterator[Any]:
        """A seekable binary reader of the object: Parquet readers fetch only the ranges they
        need (the footer, some row groups) instead of the whole object."""
        with storage_errors(self.url(relative)), self.fs.open(self.path(relative), "rb") as handle:
            yield handle

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Write a small object atomically."""
        with tempfile.TemporaryDirectory(prefix="modelcycle-") as scratch:
            local = Path(scratch) / "object"
            local.write_bytes(data)
            self.put_file(local, relative)

    def put_file(self, local_path: Path, relative: str, *, move: bool = False) -> None:
        """Publish a finished local file under `relative`, atomically replacing any old one.

        Locally the copy is synced before the rename and the folder after it, so a crash or power
        loss leaves the old object or the whole new one, never an empty or partial file. With
        `move`, the caller gives the file up: on the same filesystem it is renamed, not copied
        (a day's readings are 400 MB, a copy most of a second).
        """
        target = self.path(relative)
        with storage_errors(self.url(relative)):
            if self.is_local:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                aside = Path(target).with_name(f".{Path(target).name}.{uuid.uuid4().hex}.tmp")
                try:
                    if move:
                        _move_or_copy(local_path, aside)
                    else:
                        shutil.copyfile(local_path, aside)
                    _fsync(aside)
                    aside.replace(target)
                    _fsync(Path(target).parent)
                finally:
                    aside.unlink(missing_ok=True)
            else:
                self.fs.put_file(str(local_path), target)

    def get_file(self, relative: str, local_path: Path) -> None:
        with storage_errors(self.url(relative)):
            local_path.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(self.path(relative), str(local_path))

    def delete(self, relative: str) -> None:
        """Delete a key or a folder of keys; missing is fine."""
        with storage_errors(self.url(relative)):
            if self.fs.exists(self.path(relative)):
                self.fs.rm(self.path(relative), recursive=True)

    def check_reachable(self) -> None:
        """Fail early, with one line, if the root cannot be listed (bad endpoint, credentials)."""
        with storage_errors(self.root_url):
            if self.is_local:
                return
            bucket = self.root.split("/", 1)[0]
            self.fs.ls(bucket, detail=False)


def open_store(
    url: str, *, s3_endpoint_url: str | None = None, gcs_endpoint_url: str | None = None
) -> ObjectStore:
    """The store for a URL; remote schemes other than s3/gs are refused with a clear message."""
    scheme = _scheme(url)
    if scheme not in ("file", *_REMOTE_SCHEMES):
        raise InvalidInputError(f"unsupported storage URL {url!r}: use a path, s3:// or gs://")
    return ObjectStore(url, s3_endpoint_url=s3_endpoint_url, gcs_endpoint_url=gcs_endpoint_url)
