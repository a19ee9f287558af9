"""`modelcycle serve`: the prediction API under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from modelcycle.cli.context import settings_from
from modelcycle.cli.serve_access import check_open_api, is_loopback
from modelcycle.errors import InvalidInputError
from modelcycle.settings import Settings


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    allow_open: Annotated[
        bool,
        typer.Option(
            "--allow-open",
            help="Serve /v1/* without API keys on a non-loopback --host (warned about). "
            "Also MODELCYCLE_SERVING_ALLOW_OPEN=true.",
        ),
    ] = False,
) -> None:
    """Serve both registered models behind their `champion` alias (MODELCYCLE_SERVING_ALIAS).

    Models are ONNX, checked against the sha256 recorded at registration before use. A new
    version is picked up by polling the registry (MODELCYCLE_SERVING_POLL_SECONDS, default 30)
    or at once through the MLflow webhook endpoint (MODELCYCLE_WEBHOOK_SECRET), and swapped in
    without dropping a request. Verified models are cached, so the API also starts while the
    registry is down. Requests need `Authorization: Bearer <key>` with a user's key (`modelcycle
    users key create`) or one from MODELCYCLE_API_KEYS (keys are required outside the local
    environment; without keys the API listens only on loopback unless --allow-open).
    Docs: http://HOST:PORT/docs.
    """
    import uvicorn

    from modelcycle.serving.app import create_app

    settings = settings_from(ctx)
    allow_open = allow_open or settings.serving_allow_open
    # Open on purpose or on loopback only; elsewhere revoking the last key must not open the API.
    open_allowed = allow_open or is_loopback(host)
    # The store is asked only when its answer matters: the loopback default in local needs none.
    needs_keys = settings.environment != "local" or not open_allowed
    has_keys = bool(settings.api_key_set) or (needs_keys and _users_have_keys(settings))
    if settings.environment != "local" and not has_keys:
        raise InvalidInputError(
            "no API keys: MODELCYCLE_API_KEYS is empty and no user has a key "
            f"(`modelcycle users key create`); the API will not run open in "
            f"{settings.environment}"
        )
    check_open_api(host, has_keys=has_keys, allow_open=allow_open, port=port)
    try:
        uvicorn.run(
            create_app(settings, open_allowed=open_allowed),
            host=host,
            port=port,
            access_log=False,
            log_config=None,
            server_header=False,
            timeout_graceful_shutdown=10,
        )
    except OSError as error:
        raise InvalidInputError(f"cannot listen on {host}:{port}: {error.strerror}") from error


def _users_have_keys(settings: Settings) -> bool:
    """Whether any user holds a working API key in the store."""
    from modelcycle.access.keys import key_holders
    from modelcycle.store import open_store

    store = open_store(settings)
    try:
        with store.session() as session:
            return bool(key_holders(session=session))
    finally:
        store.close()
