"""tabular_jobs: the tables of a job fitted to several samples joined by keys

Revision ID: 0011_multitable_jobs
Revises: 0010_fitted_tabular_jobs
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_multitable_jobs"
down_revision = "0010_fitted_tabular_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tabular_jobs") as batch:
        batch.add_column(sa.Column("tables", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tabular_jobs") as batch:
        batch.drop_column("tables")
