"""dataset_requests: the status index also orders by id, and a queue index (status, attempts,
created_at, id) lets the request sensor read the oldest new pending requests after its mark,
and the retried ones, as ranges, with a LIMIT, at any backlog

Revision ID: 0014_dataset_requests_queue
Revises: 0013_faces_reservation_order
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0014_dataset_requests_queue"
down_revision = "0013_faces_reservation_order"
branch_labels = None
depends_on = None

TABLE = "dataset_requests"


def upgrade() -> None:
    op.drop_index("ix_dataset_requests_status", table_name=TABLE)
    op.create_index("ix_dataset_requests_status", TABLE, ["status", "created_at", "id"])
    op.create_index("ix_dataset_requests_queue", TABLE, ["status", "attempts", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_dataset_requests_queue", table_name=TABLE)
    op.drop_index("ix_dataset_requests_status", table_name=TABLE)
    op.create_index("ix_dataset_requests_status", TABLE, ["status", "created_at"])
