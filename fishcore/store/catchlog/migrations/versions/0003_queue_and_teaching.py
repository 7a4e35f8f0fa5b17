"""What the review queue and teaching need: how unfamiliar each photo was, its perceptual hash, where it was taught.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("photos") as batch:
        batch.add_column(sa.Column("phash", sa.String(16), nullable=True))  # 64-bit perceptual hash, hex
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("distance", sa.Float, nullable=True))  # to the nearest training photo (cosine)
        batch.add_column(sa.Column("distance_threshold", sa.Float, nullable=True))  # the model's "unfamiliar" line
        batch.add_column(sa.Column("taught_to", sa.String(200), nullable=True))  # the My photos dataset it went into
        batch.add_column(sa.Column("taught_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        for column in ("taught_at", "taught_to", "distance_threshold", "distance"):
            batch.drop_column(column)
    with op.batch_alter_table("photos") as batch:
        batch.drop_column("phash")
