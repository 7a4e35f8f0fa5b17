"""The user's word on each entry (right, wrong and what it is, not a fish), with its history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("word", sa.String(20), nullable=True))
        batch.add_column(sa.Column("true_species", sa.String(200), nullable=True))
        batch.add_column(sa.Column("word_by", sa.String(100), nullable=True))
        batch.add_column(sa.Column("word_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_entries_word", ["word"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.String(36), sa.ForeignKey("entries.id"), nullable=False),
        sa.Column("word", sa.String(20), nullable=False),
        sa.Column("true_species", sa.String(200), nullable=True),
        sa.Column("word_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("word_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_feedback_entry_id", "feedback", ["entry_id"])


def downgrade() -> None:
    op.drop_index("ix_feedback_entry_id", "feedback")
    op.drop_table("feedback")
    with op.batch_alter_table("entries") as batch:
        batch.drop_index("ix_entries_word")
        for column in ("word_at", "word_by", "true_species", "word"):
            batch.drop_column(column)
