"""check_failures and face_scans

Revision ID: 0004_checks
Revises: 0003_tabular_jobs
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_checks"
down_revision = "0003_tabular_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "check_failures",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("check_name", sa.String(256), nullable=False),
        sa.Column("asset", sa.String(256), nullable=False),
        sa.Column("buckets", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_run", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_failures")),
    )
    op.create_index("ix_check_failures_open", "check_failures", ["resolved_at", "check_name"])
    op.create_table(
        "face_scans",
        sa.Column("face_id", sa.String(32), nullable=False),
        sa.Column("decodable", sa.Boolean(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("blur", sa.Float(), nullable=False),
        sa.Column("brightness", sa.Float(), nullable=False),
        sa.Column("clipped", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("face_id", name=op.f("pk_face_scans")),
    )


def downgrade() -> None:
    op.drop_table("face_scans")
    op.drop_index("ix_check_failures_open", table_name="check_failures")
    op.drop_table("check_failures")
