"""users: when the password was last set, so a new password ends the sessions signed before it

The `password_hash` column exists since 0002; the dashboard's sessions carry this time and a
session from before the last `users set-password` is refused.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_set_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("password_set_at")
