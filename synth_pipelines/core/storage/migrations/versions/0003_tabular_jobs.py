"""tabular_jobs

Revision ID: 0003_tabular_jobs
Revises: 0002_dataset_requests
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_tabular_jobs"
down_revision = "0002_dataset_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tabular_jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("schema_json", sa.JSON(), nullable=False),
        sa.Column("drafter", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("total_chunks", sa.Integer(), nullable=False),
        sa.Column("completed_chunks", sa.Integer(), nullable=False),
        sa.Column("rows_generated", sa.BigInteger(), nullable=False),
        sa.Column("rows_deduplicated", sa.BigInteger(), nullable=False),
        sa.Column("llm_rejects", sa.Integer(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=True),
        sa.Column("stats", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tabular_jobs")),
    )
    op.create_index("ix_tabular_jobs_status", "tabular_jobs", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_tabular_jobs_status", table_name="tabular_jobs")
    op.drop_table("tabular_jobs")
