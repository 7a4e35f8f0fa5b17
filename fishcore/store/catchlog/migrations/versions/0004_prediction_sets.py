"""What "not sure" said: the prediction set with its coverage, and the confidence threshold the verdict used.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("candidates", sa.Text, nullable=True))  # JSON: [[species, probability], ...]
        batch.add_column(sa.Column("set_coverage", sa.Float, nullable=True))  # the set holds the species this often
        batch.add_column(sa.Column("threshold", sa.Float, nullable=True))  # "confident" from this confidence on


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        for column in ("threshold", "set_coverage", "candidates"):
            batch.drop_column(column)
