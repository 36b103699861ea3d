"""face_phash_bands: the perceptual-hash band index that keeps near-duplicates out at insert time

Revision ID: 0008_face_phash_bands
Revises: 0007_check_names
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_face_phash_bands"
down_revision = "0007_check_names"
branch_labels = None
depends_on = None

# As in core/faces/inventory.py (a migration never imports application code, which moves on).
BAND_WIDTHS = (13, 13, 13, 13, 12)
BATCH = 5000


def band_keys(phash: int) -> list[int]:
    value, keys, offset = phash & 0xFFFFFFFFFFFFFFFF, [], 0
    for band, width in enumerate(BAND_WIDTHS):
        keys.append(band << 13 | ((value >> offset) & ((1 << width) - 1)))
        offset += width
    return keys


def upgrade() -> None:
    bands = op.create_table(
        "face_phash_bands",
        sa.Column("band_key", sa.Integer(), nullable=False),
        sa.Column("face_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["face_id"],
            ["faces.id"],
            name=op.f("fk_face_phash_bands_face_id_faces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("band_key", "face_id", name=op.f("pk_face_phash_bands")),
    )
    # Index the faces stored before this revision.
    connection = op.get_bind()
    faces = sa.table("faces", sa.column("id", sa.String), sa.column("phash", sa.BigInteger))
    result = connection.execute(sa.select(faces.c.id, faces.c.phash).order_by(faces.c.id))
    while chunk := result.fetchmany(BATCH):
        rows = [{"band_key": k, "face_id": i} for i, phash in chunk for k in band_keys(phash)]
        connection.execute(bands.insert(), rows)


def downgrade() -> None:
    op.drop_table("face_phash_bands")
