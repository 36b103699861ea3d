"""tabular_jobs: the sample a fitted job was fitted to (where it is, encrypted) and its reports

Revision ID: 0010_fitted_tabular_jobs
Revises: 0009_image_sets
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_fitted_tabular_jobs"
down_revision = "0009_image_sets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tabular_jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(128), nullable=True))
        batch.add_column(sa.Column("sample", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("reports", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tabular_jobs") as batch:
        batch.drop_column("reports")
        batch.drop_column("wrapped_key")
        batch.drop_column("sample")
        batch.drop_column("owner")
