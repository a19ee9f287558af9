"""Real receivers on loopback for alert channels: an HTTP endpoint and an SMTP server.

Both run in a background thread and record what arrived, so a test asserts on the bytes a real
webhook consumer or mail server would see. `closed_port` gives an endpoint that refuses.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.servers import LOOPBACK, free_port


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    return free_port()


_Item = TypeVar("_Item")


def _wait_for_items(
    items: list[_Item], lock: threading.Condition, count: int, timeout: float, what: str
) -> list[_Item]:
    deadline = time.monotonic() + timeout
    with lock:
        while len(items) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"expected {count} {what} within {timeout}s, got {len(items)}")
            lock.wait(remaining)
        return list(items)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Receiver:
    """Start on enter, stop on exit."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class HttpReceiver(_Receiver):
    """An HTTP server answering every POST with `status` and `response_body`, recording each.

    Set `status = 500` to play a failing endpoint; header names keep the case the client sent,
    so look them up with `header()`.
    """

    def __init__(self, status: int = 200, response_body: bytes = b"ok") -> None:
        self.status = status
        self.response_body = response_body
        self._requests: list[RecordedRequest] = []
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("HttpReceiver is not started")
        return f"http://{LOOPBACK}:{self._server.server_address[1]}/hook"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until `count` requests arrived; raises `TimeoutError` otherwise."""
        return _wait_for_items(self._requests, self._changed, count, timeout, "requests")

    def _record(self, request: RecordedRequest) -> tuple[int, bytes]:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()
            return self.status, self.response_body

    def start(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = RecordedRequest(
                    method=self.command,
                    path=self.path,
                    headers=dict(self.headers.items()),
                    body=self.rfile.read(length),
                )
                status, body = receiver._record(request)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: pytest output is for failures."""

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval keeps stop() (and so each test's teardown) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def header(request: RecordedRequest, name: str) -> str | None:
    """A request header by case-insensitive name."""
    wanted = name.lower()
    return next((v for k, v in request.headers.items() if k.lower() == wanted), None)


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: Message


@dataclass(frozen=True)
class LoopbackCertificate:
    """A CA and a leaf for 127.0.0.1/localhost signed by it, as PEM files in `directory`."""

    ca_path: Path
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Verifies hostnames as in production, trusting only this test CA."""
        return ssl.create_default_context(cafile=str(self.ca_path))


def create_test_certificate(directory: Path) -> LoopbackCertificate:
    """A throwaway CA and server certificate, so TLS is verified for real but offline.

    A CA plus a leaf (rather than one self-signed leaf) satisfies OpenSSL's strict chain checks.
    """
    now = dt.datetime.now(dt.UTC)
    validity = (now - dt.timedelta(minutes=5), now + dt.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelcycle test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = LoopbackCertificate(
        ca_path=directory / "ca.pem",
        cert_path=directory / "server.pem",
        key_path=directory / "server-key.pem",
    )
    paths.ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.cert_path.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    paths.key_path.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


class _CollectingHandler:
    """aiosmtpd handler: parses each accepted message and hands it to `on_mail`."""

    def __init__(self, on_mail: Callable[[ReceivedMail], None]) -> None:
        self._on_mail = on_mail

    async def handle_DATA(  # noqa: N802 (the name aiosmtpd calls)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else (content or "").encode("utf-8")
        self._on_mail(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                message=email.message_from_bytes(raw, policy=email.policy.default),
            )
        )
        return "250 Message accepted"


class SmtpReceiver(_Receiver):
    """An aiosmtpd server on loopback collecting every message it accepts.

    With `starttls=True` it serves a freshly generated certificate and refuses mail before
    STARTTLS; `client_ssl_context` trusts that certificate. With `auth_credentials` it requires
    AUTH (only over TLS) and accepts only that user and password.
    """

    def __init__(
        self, *, starttls: bool = False, auth_credentials: tuple[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self._starttls = starttls
        self._credentials = auth_credentials
        self._mails: list[ReceivedMail] = []
        self._changed = threading.Condition()
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._certificate: LoopbackCertificate | None = None
        self._controller: Controller | None = None

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._changed:
            return list(self._mails)

    @property
    def client_ssl_context(self) -> ssl.SSLContext:
        if self._certificate is None:
            raise RuntimeError("SmtpReceiver has no certificate: start it with starttls=True")
        return self._certificate.client_context()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:
        """Block until `count` messages arrived; raises `TimeoutError` otherwise."""
        return _wait_for_items(self._mails, self._changed, count, timeout, "emails")

    def _collect(self, mail: ReceivedMail) -> None:
        with self._changed:
            self._mails.append(mail)
            self._changed.notify_all()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self._credentials is None or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = self._credentials
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    def start(self) -> Self:
        smtp_parameters: dict[str, Any] = {}
        if self._starttls:
            self._tempdir = tempfile.TemporaryDirectory(prefix="smtp-tls-")
            self._certificate = create_test_certificate(Path(self._tempdir.name))
            smtp_parameters |= {
                "tls_context": self._certificate.server_context(),
                "require_starttls": True,
            }
        if self._credentials is not None:
            smtp_parameters |= {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": True,
            }
        self._controller = Controller(
            _CollectingHandler(self._collect),
            hostname=LOOPBACK,
            port=self.port,
            **smtp_parameters,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None
