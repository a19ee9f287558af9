"""Who can reach what `serve` and `up` start: open services stay on loopback unless asked for.

An API without keys, the MLflow server (anyone can move `champion`) and the Dagster UI (anyone can
launch runs) have no authentication; on another interface anybody on the network could use them.
Listening there takes an explicit `--allow-open`, and then a warning on stderr and in the log.
"""

from __future__ import annotations

import ipaddress
import socket

import structlog

from modelcycle.cli.context import stderr
from modelcycle.errors import InvalidInputError

log = structlog.get_logger(__name__)


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback address (127.0.0.0/8, ::1)."""
    name = host.strip("[]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass  # a host name: what it resolves to decides
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except (OSError, UnicodeError):
        return False  # unresolvable: it cannot be shown to be loopback
    return bool(addresses) and all(
        ipaddress.ip_address(str(address).split("%")[0]).is_loopback for address in addresses
    )


def open_api_exposure(host: str, port: int) -> str:
    return (
        f"prediction API on {host}:{port} serves /v1/* without API keys: "
        f"anyone who can reach {host} can call it"
    )


def warn_exposed(exposed: list[str], host: str) -> None:
    """Say loudly, on stderr and in the log, what anybody who reaches `host` can use."""
    for what in exposed:
        stderr.print(
            f"[bold red]warning:[/bold red] {what} (--allow-open)", highlight=False, soft_wrap=True
        )
    log.warning("listening open on a non-loopback address", host=host, exposed=exposed)


def check_open_api(host: str, *, has_keys: bool, allow_open: bool, port: int) -> None:
    """Refuse an API without keys on a non-loopback address, unless allowed (then warn)."""
    if has_keys or is_loopback(host):
        return
    if not allow_open:
        raise InvalidInputError(
            f"no API keys (MODELCYCLE_API_KEYS) and --host {host} is not a loopback address: "
            "anyone on the network could call /v1/*; set keys, listen on 127.0.0.1, or pass "
            "--allow-open (MODELCYCLE_SERVING_ALLOW_OPEN=true) to serve it open anyway"
        )
    warn_exposed([open_api_exposure(host, port)], host)


def check_open_stack(host: str, *, allow_open: bool, exposed: list[str]) -> None:
    """Refuse `up` on a non-loopback address, unless allowed (then warn about each service)."""
    if is_loopback(host):
        return
    if not allow_open:
        raise InvalidInputError(
            f"--host {host} is not a loopback address, and the services `up` starts have no "
            "authentication: on the MLflow server anyone could move `champion` (and so what the "
            "API serves), in the Dagster UI anyone could launch runs; listen on 127.0.0.1, or "
            "pass --allow-open to expose them anyway"
        )
    warn_exposed(exposed, host)
