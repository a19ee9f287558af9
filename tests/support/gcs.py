"""A GCS JSON-API server on loopback (gcp-storage-emulator), and an HTTP proxy in front of it that
a test can switch to answering server errors, as GCS does in a bad hour.

GCS itself cannot run here; the emulator is a named stand-in for the managed service. The proxy
forwards every request unchanged until `fail_with(status)`; from then on it answers that status
with a GCS-style JSON error body, until `recover()`.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.servers import LOOPBACK, free_port, run_server_process

GCS_BUCKET = "fleet"
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@contextmanager
def start_gcs_emulator(log_dir: Path) -> Iterator[str]:
    """gcp-storage-emulator in memory with the bucket `fleet`; yields its endpoint URL."""
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    command = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", LOOPBACK]
    command += ["--port", str(port), "--default-bucket", GCS_BUCKET, "--in-memory", "--quiet"]
    with run_server_process(
        command, health_url=f"{url}/storage/v1/b", log_path=log_dir / f"gcs-{port}.log"
    ):
        yield url


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = b""
        while size := int(handler.rfile.readline().strip() or b"0", 16):
            chunks += handler.rfile.read(size)
            handler.rfile.readline()
        handler.rfile.readline()
        return chunks
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultyHttpProxy


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: object) -> None:
        return  # quiet: failures show in the test, not as access lines

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self) -> None:
        proxy = self.server.proxy
        body = _read_body(self)
        status = proxy.failing_status
        if status is not None:
            proxy.failed_requests += 1
            error = {"error": {"code": status, "message": "injected server error"}}
            self._answer(status, [("Content-Type", "application/json")], json.dumps(error).encode())
            return
        upstream = http.client.HTTPConnection(*proxy.target, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            self._answer(answer.status, answer.getheaders(), answer.read())
        finally:
            upstream.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward  # noqa: N815


class FaultyHttpProxy:
    """Forwards HTTP to `target_url`, or answers `status` to everything while failing."""

    def __init__(self, target_url: str):
        target = urlsplit(target_url)
        self.target = (target.hostname or LOOPBACK, target.port or 80)
        self.failing_status: int | None = None
        self.failed_requests = 0
        self._server = _ProxyServer((LOOPBACK, 0), _ProxyHandler)
        self._server.proxy = self

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def start(self) -> FaultyHttpProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_with(self, status: int) -> None:
        self.failing_status = status

    def recover(self) -> None:
        self.failing_status = None
