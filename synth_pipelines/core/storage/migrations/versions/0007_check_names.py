"""check names without their asset prefix

Until issue 21 the checks on face_inventory, dataset_package and tabular_dataset were named
`<asset>__<name>`; Dagster groups checks by asset, and they are now named `<name>` on their
asset. Open and closed holds recorded under the old names are renamed, so the next pass of
`near_duplicates` on face_inventory lifts a hold `face_inventory__near_duplicates` placed. Only
names that start with their own row's asset and `__` change; the downgrade puts the prefix
back on those assets' rows.

Revision ID: 0007_check_names
Revises: 0006_subjects
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_check_names"
down_revision = "0006_subjects"
branch_labels = None
depends_on = None

# The assets whose checks carried the prefix (persona_adapter's and flux_lora_samples' never did).
ASSETS = ("face_inventory", "dataset_package", "tabular_dataset")


def _failures() -> sa.Table:
    return sa.table(
        "check_failures",
        sa.column("check_name", sa.String),
        sa.column("asset", sa.String),
    )


def upgrade() -> None:
    failures = _failures()
    prefix = failures.c.asset + "__"
    # substr and length, not LIKE: `_` is a LIKE wildcard, and both SQLite and PostgreSQL have them
    op.execute(
        failures.update()
        .where(
            failures.c.asset.in_(ASSETS),
            sa.func.length(failures.c.check_name) > sa.func.length(prefix),
            sa.func.substr(failures.c.check_name, 1, sa.func.length(prefix)) == prefix,
        )
        .values(check_name=sa.func.substr(failures.c.check_name, sa.func.length(prefix) + 1))
    )


def downgrade() -> None:
    failures = _failures()
    op.execute(
        failures.update()
        .where(failures.c.asset.in_(ASSETS))
        .values(check_name=failures.c.asset + "__" + failures.c.check_name)
    )
