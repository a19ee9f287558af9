"""release: release requests and their append-only decisions

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("gate_results", sa.JSON(), nullable=False),
        sa.Column("environment", sa.String(length=20), nullable=False),
        sa.Column("lineage", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model", "version", "environment"),
    )
    with op.batch_alter_table("release_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_release_requests_model"), ["model"], unique=False)
        batch_op.create_index(batch_op.f("ix_release_requests_state"), ["state"], unique=False)
    op.create_table(
        "release_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_kind", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("gate_results", sa.JSON(), nullable=False),
        sa.Column("alias_from", sa.String(length=40), nullable=True),
        sa.Column("alias_to", sa.String(length=40), nullable=True),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["release_requests.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("release_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_release_decisions_request_id"), ["request_id"], unique=False
        )
    _append_only("release_decisions")


def _append_only(table: str) -> None:
    """The database itself refuses to change or delete a row of the audit trail."""
    message = f"{table} is append-only: a decision is never changed or deleted"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{message}'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )
        return
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER release_decisions_append_only ON release_decisions")
        op.execute("DROP FUNCTION release_decisions_append_only()")
    with op.batch_alter_table("release_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_decisions_request_id"))
    op.drop_table("release_decisions")
    with op.batch_alter_table("release_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_requests_state"))
        batch_op.drop_index(batch_op.f("ix_release_requests_model"))
    op.drop_table("release_requests")
