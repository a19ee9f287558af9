"""Where alerts go: a signed webhook, a Slack incoming webhook or an email, behind one protocol.

Secrets (the webhook's HMAC key, the Slack URL, the SMTP password) are read from the environment
at send time, named by the channel's config, and never appear in an error or a log line: every
failure message passes through `_redact` with the secrets the channel knows.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson
import structlog

from modelcycle.alerting.config import EmailChannel, SlackChannel, WebhookChannel
from modelcycle.alerting.messages import AlertMessage
from modelcycle.errors import ModelcycleError

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Modelcycle-Signature"
TIMESTAMP_HEADER = "X-Modelcycle-Timestamp"
EVENT_HEADER = "X-Modelcycle-Event"

_MAX_PARALLEL_DELIVERIES = 8
_MAX_REASON_CHARS = 200


class ChannelError(ModelcycleError):
    """A channel could not deliver; the message is one line and never holds a secret."""


class Channel(Protocol):
    """One configured destination; `customer` limits it to that customer's device alerts."""

    name: str
    customer: str | None

    def send(self, message: AlertMessage) -> None:
        """Deliver once, or raise `ChannelError`; retrying is `deliver`'s job."""
        ...


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The `X-Modelcycle-Signature` value: HMAC-SHA256 over `"{timestamp}.{body}"`, as `sha256=…`.

    The timestamp is inside the signed bytes so a captured request cannot be replayed later
    with a fresh timestamp header.
    """
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_signature(
    secret: bytes,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    tolerance_seconds: float | None = 300.0,
    now: float | None = None,
) -> bool:
    """Check a received webhook, for receivers: pass the raw body and the two headers.

    `timestamp` is the `X-Modelcycle-Timestamp` header, `header` the `X-Modelcycle-Signature`
    one. The comparison is constant-time. Requests older (or newer) than `tolerance_seconds`
    are refused to stop replays; pass `None` to check the signature alone.
    """
    if tolerance_seconds is not None:
        try:
            sent_at = int(timestamp)
        except ValueError:
            return False
        current = time.time() if now is None else now
        if abs(current - sent_at) > tolerance_seconds:
            return False
    try:
        expected = sign(secret, timestamp, body)
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected.encode("ascii"), header.encode("utf-8", "replace"))


def _redact(text: str, secrets: Sequence[str | None]) -> str:
    """One line, at most `_MAX_REASON_CHARS`, with every known secret replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    line = " ".join(text.split())
    return line if len(line) <= _MAX_REASON_CHARS else line[: _MAX_REASON_CHARS - 1] + "…"


def _from_environment(environ: Mapping[str, str], variable: str, channel: str, what: str) -> str:
    value = environ.get(variable)
    if not value:
        raise ChannelError(
            f"channel {channel!r}: environment variable {variable} ({what}) is unset"
        )
    return value


def _post(
    channel: str,
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    secrets: Sequence[str | None],
) -> httpx.Response:
    """POST and turn transport failures and non-2xx answers into a `ChannelError`."""
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        reason = _redact(f"{type(exc).__name__}: {exc}", secrets)
        raise ChannelError(f"channel {channel!r}: request failed ({reason})") from None
    if not response.is_success:
        answer = _redact(response.text, secrets)
        raise ChannelError(
            f"channel {channel!r}: endpoint answered HTTP {response.status_code}"
            + (f" ({answer})" if answer else "")
        )
    return response


class WebhookSender:
    """Posts the alert as compact JSON; signs it when `secret_env` names a secret."""

    def __init__(
        self,
        name: str,
        config: WebhookChannel,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.customer = config.customer
        self._config = config
        self._environ = environ
        self._clock = clock

    def send(self, message: AlertMessage) -> None:
        config = self._config
        environ = os.environ if self._environ is None else self._environ
        secret = (
            None
            if config.secret_env is None
            else _from_environment(environ, config.secret_env, self.name, "webhook secret")
        )
        body = orjson.dumps(message.to_json_dict(), option=orjson.OPT_NON_STR_KEYS)
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: message.event,
            TIMESTAMP_HEADER: timestamp,
        }
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret.encode("utf-8"), timestamp, body)
        # The query string may carry a token; keep it out of error messages too.
        query = urlsplit(config.url).query or None
        _post(
            self.name,
            config.url,
            body=body,
            headers=headers,
            timeout=config.timeout_seconds,
            secrets=[secret, config.url, query],
        )


def slack_text(message: AlertMessage) -> str:
    """The title, then one `key: value` line per detail, as Slack shows it."""
    lines = [message.title]
    lines += [f"{key}: {value}" for key, value in message.details.items()]
    return "\n".join(lines)


class SlackSender:
    """Posts `{"text": …}` to a Slack-compatible incoming webhook; the URL is the secret."""

    def __init__(
        self, name: str, config: SlackChannel, *, environ: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.customer = config.customer
        self._config = config
        self._environ = environ

    def send(self, message: AlertMessage) -> None:
        config = self._config
        if config.url is not None:
            url = config.url
        elif config.url_env is not None:
            environ = os.environ if self._environ is None else self._environ
            url = _from_environment(environ, config.url_env, self.name, "Slack webhook URL")
        else:  # the config's validator demands one of the two
            raise ChannelError(f"channel {self.name!r}: neither url nor url_env is set")
        body = orjson.dumps({"text": slack_text(message)})
        _post(
            self.name,
            url,
            body=body,
            headers={"Content-Type": "application/json"},
            timeout=config.timeout_seconds,
            secrets=[url, urlsplit(url).path or None],
        )


def email_body(message: AlertMessage) -> str:
    """Plain text a person reads on a phone: the summary first, then the facts."""
    lines = [
        message.summary,
        "",
        f"event:    {message.event}",
        f"severity: {message.severity}",
        f"rule:     {message.rule} ({message.kind})",
        f"key:      {message.key}",
        f"time:     {message.at.isoformat()}",
        f"customer: {message.customer_id or '-'}",
    ]
    if message.details:
        lines += ["", "details:"]
        lines += [f"  {key}: {value}" for key, value in message.details.items()]
    return "\n".join(lines) + "\n"


class EmailSender:
    """Sends a plain-text email over SMTP, upgrading with STARTTLS before any login."""

    def __init__(
        self,
        name: str,
        config: EmailChannel,
        *,
        environ: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.customer = config.customer
        self._config = config
        self._environ = environ
        self._ssl_context = ssl_context

    def _password(self) -> str | None:
        config = self._config
        if config.username is None:
            return None
        if config.password_env is None:
            raise ChannelError(f"channel {self.name!r}: username is set but password_env is not")
        environ = os.environ if self._environ is None else self._environ
        return _from_environment(environ, config.password_env, self.name, "SMTP password")

    def _compose(self, message: AlertMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.title
        mail["From"] = self._config.sender
        mail["To"] = ", ".join(self._config.to)
        mail.set_content(email_body(message))
        return mail

    def send(self, message: AlertMessage) -> None:
        config = self._config
        password = self._password()
        mail = self._compose(message)
        try:
            with smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds) as smtp:
                if config.starttls:
                    context = self._ssl_context or ssl.create_default_context()
                    smtp.starttls(context=context)
                if config.username is not None and password is not None:
                    smtp.login(config.username, password)
                smtp.send_message(mail)
        except smtplib.SMTPAuthenticationError as exc:
            reason = _redact(_smtp_reply(exc), [password])
            raise ChannelError(f"channel {self.name!r}: SMTP login refused ({reason})") from None
        except smtplib.SMTPResponseException as exc:
            reason = _redact(f"{type(exc).__name__}: {_smtp_reply(exc)}", [password])
            raise ChannelError(
                f"channel {self.name!r}: {config.host}:{config.port} refused the mail ({reason})"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            # ssl.SSLError and socket timeouts are OSErrors.
            reason = _redact(f"{type(exc).__name__}: {exc}", [password])
            raise ChannelError(
                f"channel {self.name!r}: cannot send via {config.host}:{config.port} ({reason})"
            ) from None


def _smtp_reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else ""
    return f"{exc.smtp_code} {text}".strip()


def build_channel(
    name: str,
    config: WebhookChannel | SlackChannel | EmailChannel,
    *,
    environ: Mapping[str, str] | None = None,
) -> Channel:
    """The sender for one channel of the rules file; `environ` defaults to the process's."""
    if isinstance(config, WebhookChannel):
        return WebhookSender(name, config, environ=environ)
    if isinstance(config, SlackChannel):
        return SlackSender(name, config, environ=environ)
    return EmailSender(name, config, environ=environ)


@dataclass(frozen=True)
class DeliveryOutcome:
    """What happened to one message on one channel; `error` is the last attempt's reason."""

    channel: str
    ok: bool
    attempts: int
    error: str | None = None


def deliver(
    channel: Channel,
    message: AlertMessage,
    *,
    attempts: int,
    backoff_seconds: float,
    sleep: Callable[[float], Any] = time.sleep,
) -> DeliveryOutcome:
    """Send with up to `attempts` tries, waiting backoff, 2×backoff, 4×backoff… in between.

    Only `ChannelError` is retried: anything else is a bug and propagates. Logs name the channel,
    never its URL, because a Slack URL is a credential.
    """
    error: str | None = None
    for attempt in range(1, attempts + 1):
        try:
            channel.send(message)
        except ChannelError as exc:
            error = str(exc)
            log.warning(
                "alert_delivery_failed",
                channel=channel.name,
                key=message.key,
                attempt=attempt,
                of=attempts,
                error=error,
            )
            if attempt < attempts:
                sleep(backoff_seconds * 2 ** (attempt - 1))
            continue
        log.info(
            "alert_delivered",
            channel=channel.name,
            key=message.key,
            alert_event=message.event,
            attempts=attempt,
        )
        return DeliveryOutcome(channel=channel.name, ok=True, attempts=attempt)
    return DeliveryOutcome(channel=channel.name, ok=False, attempts=attempts, error=error)


def deliver_all(
    pairs: Sequence[tuple[Channel, AlertMessage]],
    *,
    attempts: int,
    backoff_seconds: float,
) -> list[DeliveryOutcome]:
    """Deliver every (channel, message) pair in parallel, so a dead channel delays no other.

    Outcomes come back in the order of `pairs`.
    """
    if not pairs:
        return []
    workers = min(_MAX_PARALLEL_DELIVERIES, len(pairs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="alert-delivery") as pool:
        futures = [
            pool.submit(
                deliver, channel, message, attempts=attempts, backoff_seconds=backoff_seconds
            )
            for channel, message in pairs
        ]
        return [future.result() for future in futures]
