"""Alembic environment: run by `modelcycle db upgrade` with a connection in the config."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from modelcycle.store.tables import Base

config = context.config


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying a table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("modelcycle runs its migrations with a connection: use `modelcycle db`")
run_with(connection)
