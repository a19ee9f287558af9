"""Approvers hear of a release request that waits for them, through the alert channels.

The message links to the request's comparison on the API (`MODELCYCLE_PUBLIC_URL`). Every channel
not bound to one customer gets it (customer channels carry only their devices' alerts). A channel
that fails is retried as alerts are, then logged and reported back, never raised: the request is
open whatever the channels do.
"""

from __future__ import annotations

from datetime import UTC, datetime

from modelcycle.alerting.channels import DeliveryOutcome, build_channel, deliver_all
from modelcycle.alerting.config import AlertingConfig
from modelcycle.alerting.messages import AlertMessage
from modelcycle.release.rules import ReleaseRecord, failed_gates


def request_link(public_url: str, request_id: int) -> str:
    return f"{public_url.rstrip('/')}/v1/releases/{request_id}"


def approval_message(record: ReleaseRecord, public_url: str) -> AlertMessage:
    failed = failed_gates(record.gates)
    gates = f"gates failed: {', '.join(failed)}" if failed else "all gates passed"
    link = request_link(public_url, record.id)
    return AlertMessage(
        event="approval_needed",
        key=f"release_pending:{record.model}:{record.version}",
        rule="release_pending",
        kind="release_pending",
        severity="info",
        summary=(
            f"{record.model} v{record.version} waits for approval in {record.environment} "
            f"(request {record.id}, {gates}): {link}"
        ),
        at=datetime.now(UTC),
        details={
            "request_id": record.id,
            "model": record.model,
            "version": record.version,
            "environment": record.environment,
            "link": link,
            "gates": record.gate_results,
        },
    )


def notify_approvers(
    record: ReleaseRecord, config: AlertingConfig, public_url: str
) -> list[DeliveryOutcome]:
    message = approval_message(record, public_url)
    pairs = [
        (build_channel(name, channel), message)
        for name, channel in config.channels.items()
        if channel.customer is None
    ]
    return deliver_all(
        pairs, attempts=config.retry_attempts, backoff_seconds=config.retry_backoff_seconds
    )
