"""Devices and sync: the tokens a station lets in, and on every entry the device it came from and when the station
last changed it (what a device fetches back with since=).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),  # only the token's hash is kept
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_devices_name", "devices", ["name"])
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("device", sa.String(100), nullable=True))  # the device's name; None: this station
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_entries_device_updated_at", ["device", "updated_at"])


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.drop_index("ix_entries_device_updated_at")
        batch.drop_column("updated_at")
        batch.drop_column("device")
    op.drop_index("ix_devices_name", "devices")
    op.drop_table("devices")
