"""Which model each device last took from the station (its checksum and when), for the Phones page's "has the
active model".

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("model_checksum", sa.String(64), nullable=True))  # the card checksum it holds
        batch.add_column(sa.Column("model_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("model_at")
        batch.drop_column("model_checksum")
