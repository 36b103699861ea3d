"""faces: the face inventory

Revision ID: 0001_faces
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_faces"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "faces",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("gender", sa.String(16), nullable=False),
        sa.Column("age_group", sa.String(16), nullable=False),
        sa.Column("label_source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("object_key", sa.String(512), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("phash", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("generator", sa.String(128), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.String(128), nullable=False),
        sa.Column("intended_gender", sa.String(16), nullable=False),
        sa.Column("intended_age_group", sa.String(16), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("classifier", sa.String(64), nullable=False),
        sa.Column("face_detected", sa.Boolean(), nullable=False),
        sa.Column("predicted_gender", sa.String(16), nullable=True),
        sa.Column("gender_confidence", sa.Float(), nullable=True),
        sa.Column("predicted_age", sa.Float(), nullable=True),
        sa.Column("predicted_age_group", sa.String(16), nullable=True),
        sa.Column("age_confidence", sa.Float(), nullable=True),
        sa.Column("request_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faces")),
        sa.UniqueConstraint("sha256", name=op.f("uq_faces_sha256")),
    )
    op.create_index("ix_faces_bucket_status", "faces", ["gender", "age_group", "status"])
    op.create_index("ix_faces_batch_id", "faces", ["batch_id"])
    op.create_index("ix_faces_request_id", "faces", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_faces_request_id", table_name="faces")
    op.drop_index("ix_faces_batch_id", table_name="faces")
    op.drop_index("ix_faces_bucket_status", table_name="faces")
    op.drop_table("faces")
