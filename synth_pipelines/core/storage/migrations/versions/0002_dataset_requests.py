"""dataset_requests, and reservation leases on faces

Revision ID: 0002_dataset_requests
Revises: 0001_faces
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_dataset_requests"
down_revision = "0001_faces"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("faces") as batch:
        batch.add_column(sa.Column("reserved_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "dataset_requests",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered", sa.JSON(), nullable=True),
        sa.Column("archive_key", sa.String(512), nullable=True),
        sa.Column("archive_bytes", sa.BigInteger(), nullable=True),
        sa.Column("code_hash", sa.String(64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("downloads", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_requests")),
    )
    op.create_index("ix_dataset_requests_status", "dataset_requests", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_dataset_requests_status", table_name="dataset_requests")
    op.drop_table("dataset_requests")
    with op.batch_alter_table("faces") as batch:
        batch.drop_column("reserved_until")
