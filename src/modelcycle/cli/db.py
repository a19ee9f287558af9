"""`modelcycle db`: the monitoring store's schema (Alembic migrations)."""

from __future__ import annotations

import typer

from modelcycle.cli.context import settings_from, stdout

db_app = typer.Typer(help="Create or migrate the monitoring store's schema.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Migrate the store (MODELCYCLE_DATABASE_URL) to this version's schema; safe to repeat."""
    from modelcycle.store.database import create_store_engine, redact, schema_status
    from modelcycle.store.database import upgrade as migrate

    url = settings_from(ctx).resolved_database_url
    engine = create_store_engine(url)
    try:
        before = schema_status(engine).current
        after = migrate(engine)
    finally:
        engine.dispose()
    if before == after.current:
        stdout.print(f"{redact(url)} is already at {after.current}")
    else:
        stdout.print(f"{redact(url)}: {before or 'empty'} → {after.current}")


@db_app.command("current")
def current(ctx: typer.Context) -> None:
    """Show the store's schema revision and whether it is the one this version needs."""
    from modelcycle.store.database import create_store_engine, redact, schema_status

    url = settings_from(ctx).resolved_database_url
    engine = create_store_engine(url)
    try:
        status = schema_status(engine)
    finally:
        engine.dispose()
    state = "up to date" if status.is_current else f"out of date (needs {status.head})"
    stdout.print(f"{redact(url)}: {status.current or 'empty'}, {state}")
    if not status.is_current:
        raise typer.Exit(1)
