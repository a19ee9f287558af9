"""The modelcycle store on SQLite and on PostgreSQL, migrated to the newest schema, per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelcycle.settings import Settings
from modelcycle.store import Store, open_store
from modelcycle.store.database import create_store_engine, upgrade
from tests.support.servers import sqlalchemy_postgres_url


def migrated_store(settings: Settings) -> Store:
    engine = create_store_engine(settings.resolved_database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return open_store(settings)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings whose store is SQLite under a fresh home, or a throw-away PostgreSQL database."""
    if request.param == "sqlite":
        return Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'store.db'}")
    url = sqlalchemy_postgres_url(request.getfixturevalue("postgres_url"))
    return Settings(home=tmp_path, database_url=url)


@pytest.fixture
def store(store_settings: Settings) -> Iterator[Store]:
    opened = migrated_store(store_settings)
    try:
        yield opened
    finally:
        opened.close()
