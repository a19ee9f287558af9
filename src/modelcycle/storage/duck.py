"""One way to open a DuckDB connection, so every query runs with the same session settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory connection without DuckDB's terminal progress bar (ours draws its own).

    The progress bar is a session option: DuckDB 2 refuses it in ``connect(config=...)``.
    """
    import duckdb  # half a second to import; the API needs it only for device requests

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET enable_progress_bar = false")
    return con
