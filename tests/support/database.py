"""What a database holds, as text: for tests that prove a secret is not in it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData, create_engine, make_url, select


def stored_text(url: str) -> str:
    """Every value in every table of the database at `url`, and for SQLite its files' bytes too
    (a value deleted or overwritten may linger in a page or in the write-ahead log)."""
    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        parts: list[str] = []
        with engine.connect() as connection:
            for table in metadata.sorted_tables:
                for row in connection.execute(select(table)):
                    parts.extend(str(value) for value in row)
    finally:
        engine.dispose()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        for suffix in ("", "-wal", "-journal"):
            path = Path(parsed.database + suffix)
            if path.exists():
                parts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(parts)
