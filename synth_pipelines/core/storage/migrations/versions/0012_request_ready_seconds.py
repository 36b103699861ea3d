"""dataset_requests: seconds from request to ready, stored when a request turns ready and
indexed with its downloads, so the dashboard's percentiles and totals read an index, not every
request (backfilled from completed_at - created_at)

Revision ID: 0012_request_ready_seconds
Revises: 0011_multitable_jobs
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_request_ready_seconds"
down_revision = "0011_multitable_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dataset_requests") as batch:
        batch.add_column(sa.Column("ready_seconds", sa.Float(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        elapsed = "(julianday(completed_at) - julianday(created_at)) * 86400.0"
    else:
        elapsed = "EXTRACT(EPOCH FROM completed_at - created_at)"
    op.execute(
        f"UPDATE dataset_requests SET ready_seconds = {elapsed} WHERE completed_at IS NOT NULL"
    )
    op.create_index(
        "ix_dataset_requests_ready_seconds", "dataset_requests", ["ready_seconds", "downloads"]
    )


def downgrade() -> None:
    op.drop_index("ix_dataset_requests_ready_seconds", table_name="dataset_requests")
    with op.batch_alter_table("dataset_requests") as batch:
        batch.drop_column("ready_seconds")
