"""evaluations: the confusion matrix at the version's threshold

Accuracy alone flatters a model that never predicts a fault; the counts behind it say so.
Rows evaluated before this revision keep NULL counts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 17:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = ("true_positives", "false_positives", "false_negatives", "true_negatives")


def upgrade() -> None:
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
