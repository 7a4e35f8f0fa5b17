"""A word is kept once: a unique index on (entry, word, species, when), so two copies of one sync arriving
together cannot both add it (the database decides). Copies that such a race wrote before are removed first.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM feedback WHERE id NOT IN (SELECT MIN(id) FROM feedback "
        "GROUP BY entry_id, word, COALESCE(true_species, ''), word_at)"
    )
    op.create_index(
        "ux_feedback_once",
        "feedback",
        ["entry_id", "word", sa.text("COALESCE(true_species, '')"), "word_at"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_feedback_once", "feedback")
