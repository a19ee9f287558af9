"""modelcycle's own SQL store (SQLAlchemy 2, Alembic): evaluations, drift, training runs, alerts."""

from modelcycle.store.database import SchemaOutOfDateError, Store, open_store

__all__ = ["SchemaOutOfDateError", "Store", "open_store"]
