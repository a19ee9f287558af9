"""The monitoring store's connection and schema version, checked before every use.

SQLite under the home folder by default, PostgreSQL in production (`MODELCYCLE_DATABASE_URL`).
Commands refuse to run on a schema older than this code expects, rather than fail half-way; the
embedded default database is created on first use, as MLflow does with its own SQLite store.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import URL, Engine, create_engine, event, inspect, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from modelcycle.errors import InvalidInputError, ModelcycleError, StorageError
from modelcycle.imports import FIRST_USE_IMPORTS
from modelcycle.settings import Settings

if TYPE_CHECKING:  # Alembic is imported when the schema is checked or migrated, not with the store
    from alembic.config import Config


class SchemaOutOfDateError(ModelcycleError):
    """The database's schema is older (or newer) than this version of modelcycle expects."""

    exit_code = 7


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str

    @property
    def is_current(self) -> bool:
        return self.current == self.head


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is still worth naming, without secrets
        return url.split("@")[-1]


def require_driver(url: str, setting: str) -> URL:
    """The parsed URL, or one line naming a dialect or DB-API driver this install lacks.

    SQLAlchemy finds out only in create_engine or at the first connection, deep in a traceback;
    an asyncio driver fails later still, since modelcycle's engines are synchronous. `setting`
    names where the URL came from; the password never appears.
    """
    named = f"{setting} {redact(url)}"
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except (ArgumentError, ValueError) as error:  # NoSuchModuleError is an ArgumentError
        reason = str(error).splitlines()[0]
        raise InvalidInputError(
            f"{named}: not a database URL SQLAlchemy can use ({reason}); "
            f"use {_blocking_example(None)}"
        ) from error
    backend = parsed.get_backend_name()
    if getattr(dialect, "is_async", False):
        raise InvalidInputError(
            f"{named}: {parsed.drivername} is an asyncio driver, modelcycle needs a blocking one: "
            f"use {_blocking_example(backend)}"
        )
    try:
        dialect.import_dbapi()
    except ImportError as error:
        missing = error.name or str(error)
        which = (
            "its driver"
            if "+" in parsed.drivername
            else f"it names no driver, and SQLAlchemy's default for {backend}"
        )
        raise InvalidInputError(
            f"{named}: {which} ({missing}) is not installed; use {_blocking_example(backend)}"
        ) from error
    return parsed


def _blocking_example(backend: str | None) -> str:
    """The URL forms whose drivers modelcycle installs."""
    if backend == "postgresql":
        return "postgresql+psycopg2://…"
    return "postgresql+psycopg2://… or sqlite:///…"


def _alembic_config() -> Config:
    with FIRST_USE_IMPORTS:  # the first use may be in a poller thread
        from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("modelcycle.store") / "migrations"))
    return config


def head_revision() -> str:
    with FIRST_USE_IMPORTS:  # the first use may be in a poller thread
        from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def create_store_engine(url: str) -> Engine:
    """An engine for the store; SQLite gets foreign keys and a busy timeout for concurrent use."""
    require_driver(url, "MODELCYCLE_DATABASE_URL")
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            _switch_to_wal(cursor)
            cursor.close()

        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ValueError) as error:
        raise InvalidInputError(f"bad MODELCYCLE_DATABASE_URL {redact(url)}: {error}") from error


# How long a connection waits for another to finish switching the file to WAL; as the busy timeout.
_WAL_SWITCH_SECONDS = 30.0


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    """Put the file in WAL mode, waiting out connections that switch it at the same moment.

    SQLite answers "database is locked" at once, without its busy timeout, to a connection whose
    switch to WAL races another's; the API's pollers and a CLI opening a new embedded store do
    exactly that. The mode is stored in the file, so once it is WAL nothing needs the lock again.
    """
    deadline = time.monotonic() + _WAL_SWITCH_SECONDS
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def schema_status(engine: Engine) -> SchemaStatus:
    with FIRST_USE_IMPORTS:  # the first use may be in a poller thread
        from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as error:
        raise StorageError(
            f"cannot reach the monitoring store {redact(str(engine.url))}: "
            f"{str(error.orig if hasattr(error, 'orig') else error).splitlines()[0]}"
        ) from error
    return SchemaStatus(current=current, head=head_revision())


def upgrade(engine: Engine) -> SchemaStatus:
    """Migrate to the newest revision (a no-op when already there)."""
    with FIRST_USE_IMPORTS:  # the first use may be in a poller thread
        from alembic import command

    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return schema_status(engine)


def _is_empty(engine: Engine) -> bool:
    with engine.connect() as connection:
        return not inspect(connection).get_table_names()


@dataclass
class Store:
    """The engine and a session factory, handed to the monitoring and alerting code."""

    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self.sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()


# One creation of the embedded store at a time: the API's pollers open it at once on first use.
_EMBEDDED_CREATION = threading.Lock()


def open_store(settings: Settings, *, check: bool = True) -> Store:
    """The store, refusing an out-of-date schema unless it is the embedded default and empty."""
    url = settings.resolved_database_url
    engine = create_store_engine(url)
    if check:
        status = schema_status(engine)
        if not status.is_current and settings.database_url is None:
            with _EMBEDDED_CREATION:
                status = schema_status(engine)  # another thread may have just created it
                if status.current is None and _is_empty(engine):
                    status = upgrade(engine)
        if not status.is_current:
            engine.dispose()
            found = status.current or "no modelcycle schema"
            raise SchemaOutOfDateError(
                f"the monitoring store {redact(url)} is at {found}, this modelcycle needs "
                f"{status.head}: run `modelcycle db upgrade`"
            )
    return Store(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))
