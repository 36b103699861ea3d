"""faces: the bucket-status index also orders by created_at and id, so a reservation reads
the oldest faces of one status of one bucket as a range of it, at any inventory size

Revision ID: 0013_faces_reservation_order
Revises: 0012_request_ready_seconds
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0013_faces_reservation_order"
down_revision = "0012_request_ready_seconds"
branch_labels = None
depends_on = None

COLUMNS = ["gender", "age_group", "status"]


def upgrade() -> None:
    op.drop_index("ix_faces_bucket_status", table_name="faces")
    op.create_index("ix_faces_bucket_status", "faces", [*COLUMNS, "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_faces_bucket_status", table_name="faces")
    op.create_index("ix_faces_bucket_status", "faces", COLUMNS)
