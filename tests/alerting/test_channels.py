"""Alert channels against real receivers on loopback, as a webhook consumer, Slack or a mailbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from modelcycle.alerting.channels import (
    ChannelError,
    EmailSender,
    SlackSender,
    WebhookSender,
    build_channel,
    deliver,
    deliver_all,
    verify_signature,
)
from modelcycle.alerting.config import EmailChannel, SlackChannel, WebhookChannel
from modelcycle.alerting.messages import AlertMessage
from tests.support.receivers import HttpReceiver, SmtpReceiver, closed_port, header

SECRET = "webhook-test-secret"
SMTP_USER = "alerts"
SMTP_PASSWORD = "correct-horse-battery"


@pytest.fixture
def message() -> AlertMessage:
    return AlertMessage(
        event="firing",
        key="accuracy:fault-classifier",
        rule="fault-accuracy",
        kind="accuracy",
        severity="critical",
        summary="fault-classifier accuracy 0.81 is below 0.90",
        at=datetime(2025, 3, 14, 6, 30, tzinfo=UTC),
        customer_id="acme",
        details={"model": "fault-classifier", "value": 0.81},
    )


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver(starttls=True, auth_credentials=(SMTP_USER, SMTP_PASSWORD)) as running:
        yield running


def email_config(smtp: SmtpReceiver) -> EmailChannel:
    return EmailChannel(
        type="email",
        host=smtp.host,
        port=smtp.port,
        starttls=True,
        username=SMTP_USER,
        password_env="SMTP_PASSWORD",
        sender="modelcycle@example.com",
        to=["oncall@example.com", "ml-team@example.com"],
        timeout_seconds=5,
    )


def test_webhook_body_is_json_and_signature_verifies(
    receiver: HttpReceiver, message: AlertMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receiver gets the alert's fields as JSON and can prove it came from us."""
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    config = WebhookChannel(type="webhook", url=receiver.url, secret_env="HOOK_SECRET")

    build_channel("ops-hook", config).send(message)

    [request] = receiver.wait_for(1)
    assert header(request, "Content-Type") == "application/json"
    assert header(request, "X-Modelcycle-Event") == "firing"
    assert json.loads(request.body) == {
        "event": "firing",
        "key": "accuracy:fault-classifier",
        "rule": "fault-accuracy",
        "kind": "accuracy",
        "severity": "critical",
        "summary": "fault-classifier accuracy 0.81 is below 0.90",
        "at": "2025-03-14T06:30:00+00:00",
        "customer_id": "acme",
        "details": {"model": "fault-classifier", "value": 0.81},
    }
    timestamp = header(request, "X-Modelcycle-Timestamp")
    signature = header(request, "X-Modelcycle-Signature")
    assert timestamp is not None
    assert signature is not None
    assert signature.startswith("sha256=")
    assert verify_signature(SECRET.encode(), timestamp, request.body, signature)
    tampered = request.body.replace(b"critical", b"info")
    assert not verify_signature(SECRET.encode(), timestamp, tampered, signature)
    assert not verify_signature(b"another-secret", timestamp, request.body, signature)


def test_webhook_without_secret_is_unsigned(receiver: HttpReceiver, message: AlertMessage) -> None:
    """Without `secret_env` the request carries no signature a receiver could misread."""
    WebhookSender("plain", WebhookChannel(type="webhook", url=receiver.url)).send(message)

    [request] = receiver.wait_for(1)
    assert header(request, "X-Modelcycle-Signature") is None
    assert header(request, "X-Modelcycle-Timestamp") is not None


def test_webhook_with_unset_secret_variable_names_it_and_sends_nothing(
    receiver: HttpReceiver, message: AlertMessage
) -> None:
    """An unsigned request is never sent in place of a signed one."""
    config = WebhookChannel(type="webhook", url=receiver.url, secret_env="MISSING_HOOK_SECRET")
    sender = WebhookSender("ops-hook", config, environ={})

    with pytest.raises(ChannelError, match="MISSING_HOOK_SECRET"):
        sender.send(message)

    assert receiver.requests == []


def test_deliver_retries_failing_endpoint_with_exponential_backoff(
    receiver: HttpReceiver, message: AlertMessage
) -> None:
    """A 500 is retried `attempts` times, waiting b then 2b, and the last error is reported."""
    receiver.status = 500
    waits: list[float] = []
    sender = WebhookSender("ops-hook", WebhookChannel(type="webhook", url=receiver.url))

    outcome = deliver(sender, message, attempts=3, backoff_seconds=0.5, sleep=waits.append)

    assert len(receiver.wait_for(3)) == 3
    assert waits == [0.5, 1.0]
    assert outcome.channel == "ops-hook"
    assert not outcome.ok
    assert outcome.attempts == 3
    assert outcome.error is not None
    assert "500" in outcome.error


def test_slack_posts_text_with_the_summary(receiver: HttpReceiver, message: AlertMessage) -> None:
    """Slack shows the title and the details as one text block."""
    config = SlackChannel(type="slack", url_env="SLACK_URL")
    SlackSender("slack", config, environ={"SLACK_URL": receiver.url}).send(message)

    [request] = receiver.wait_for(1)
    body = json.loads(request.body)
    assert list(body) == ["text"]
    assert body["text"].startswith("[FIRING] fault-classifier accuracy 0.81 is below 0.90\n")
    assert "model: fault-classifier" in body["text"]


def test_slack_failure_never_shows_the_url(receiver: HttpReceiver, message: AlertMessage) -> None:
    """The Slack URL is a credential, so an error that may be logged must not contain it."""
    receiver.status = 404
    receiver.response_body = b"no_service"
    url = receiver.url + "/services/T000/B000/XXXXSECRET"
    sender = SlackSender("slack", SlackChannel(type="slack", url=url))

    with pytest.raises(ChannelError) as caught:
        sender.send(message)

    assert "404" in str(caught.value)
    assert "no_service" in str(caught.value)
    assert "XXXXSECRET" not in str(caught.value)


def test_email_over_starttls_with_login_reaches_the_mailbox(
    smtp: SmtpReceiver, message: AlertMessage
) -> None:
    """The on-call mailbox gets the title as subject and the facts in the body."""
    sender = EmailSender(
        "oncall-mail",
        email_config(smtp),
        environ={"SMTP_PASSWORD": SMTP_PASSWORD},
        ssl_context=smtp.client_ssl_context,
    )

    sender.send(message)

    [mail] = smtp.wait_for(1)
    assert mail.mail_from == "modelcycle@example.com"
    assert mail.rcpt_tos == ["oncall@example.com", "ml-team@example.com"]
    assert mail.message["Subject"] == "[FIRING] fault-classifier accuracy 0.81 is below 0.90"
    assert mail.message["To"] == "oncall@example.com, ml-team@example.com"
    body = mail.message.get_payload(decode=True)
    assert isinstance(body, bytes)
    text = body.decode()
    assert "fault-classifier accuracy 0.81 is below 0.90" in text
    assert "accuracy:fault-classifier" in text
    assert "critical" in text
    assert "acme" in text
    assert "value: 0.81" in text


def test_email_wrong_password_is_one_line_without_the_password(
    smtp: SmtpReceiver, message: AlertMessage
) -> None:
    """A refused login says so in one line and never echoes the password."""
    wrong_password = "wrong-password-123"
    sender = EmailSender(
        "oncall-mail",
        email_config(smtp),
        environ={"SMTP_PASSWORD": wrong_password},
        ssl_context=smtp.client_ssl_context,
    )

    with pytest.raises(ChannelError) as caught:
        sender.send(message)

    reason = str(caught.value)
    assert "login refused" in reason
    assert "\n" not in reason
    assert wrong_password not in reason
    assert smtp.mails == []


def test_deliver_all_reports_dead_channel_while_live_ones_receive(
    receiver: HttpReceiver, message: AlertMessage
) -> None:
    """A channel that refuses connections fails alone; the others still get their alert."""
    with HttpReceiver() as slack_receiver:
        dead = WebhookSender(
            "dead-hook",
            WebhookChannel(type="webhook", url=f"http://127.0.0.1:{closed_port()}/hook"),
        )
        live = WebhookSender("live-hook", WebhookChannel(type="webhook", url=receiver.url))
        slack = SlackSender("slack", SlackChannel(type="slack", url=slack_receiver.url))

        outcomes = deliver_all(
            [(dead, message), (live, message), (slack, message)], attempts=2, backoff_seconds=0
        )

        assert [(o.channel, o.ok) for o in outcomes] == [
            ("dead-hook", False),
            ("live-hook", True),
            ("slack", True),
        ]
        assert outcomes[0].attempts == 2
        assert outcomes[0].error is not None
        assert len(receiver.wait_for(1)) == 1
        assert len(slack_receiver.wait_for(1)) == 1
