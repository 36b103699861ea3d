"""Face inventory bookkeeping in the factory database: levels, hashes, idempotent inserts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import Face, new_id


def free_for_exclusive(now: datetime):
    """Faces an exclusive request may take: available, or reserved under an expired lease."""
    return or_(
        Face.status == "available",
        and_(Face.status == "reserved", Face.reserved_until < now),
    )


def inventory_levels(db: FactoryDatabase) -> dict[str, int]:
    """Faces free for exclusive delivery per bucket key (`female/adult`), every bucket present:
    available ones, and reserved ones whose lease has expired (their packaging run died)."""
    levels = dict.fromkeys(ALL_BUCKET_KEYS, 0)
    query = (
        select(Face.gender, Face.age_group, func.count())
        .where(free_for_exclusive(datetime.now(UTC)))
        .group_by(Face.gender, Face.age_group)
    )
    with db.session() as session:
        for gender, age_group, count in session.execute(query):
            levels[f"{gender}/{age_group}"] = count
    return levels


def inventory_status_counts(db: FactoryDatabase) -> dict[str, dict[str, int]]:
    """Per bucket, the number of faces in each status (available, reserved, delivered)."""
    table = {
        key: {"available": 0, "reserved": 0, "delivered": 0, "shared": 0} for key in ALL_BUCKET_KEYS
    }
    query = select(Face.gender, Face.age_group, Face.status, func.count()).group_by(
        Face.gender, Face.age_group, Face.status
    )
    with db.session() as session:
        for gender, age_group, status, count in session.execute(query):
            table[f"{gender}/{age_group}"][status] = count
    return table


def all_phashes(db: FactoryDatabase) -> np.ndarray:
    """Perceptual hashes of every stored face as uint64, for near-duplicate checks."""
    with db.session() as session:
        values = session.scalars(select(Face.phash)).all()
    return np.asarray(values, dtype=np.int64).view(np.uint64)


def existing_sha256(db: FactoryDatabase, digests: Sequence[str]) -> set[str]:
    """The subset of `digests` already stored."""
    if not digests:
        return set()
    with db.session() as session:
        return set(session.scalars(select(Face.sha256).where(Face.sha256.in_(list(digests)))))


def seeds_in_batch(db: FactoryDatabase, batch_id: str) -> set[int]:
    """Per-face seeds already stored by `batch_id`: what an interrupted attempt already did."""
    with db.session() as session:
        return set(session.scalars(select(Face.seed).where(Face.batch_id == batch_id)))


def insert_faces(db: FactoryDatabase, rows: Iterable[dict[str, Any]]) -> int:
    """Insert face rows in one transaction, skipping any whose sha256 is already stored.

    Returns the number of rows inserted. Safe to repeat: a retried batch never double-inserts.
    """
    rows = [{**row, "id": row.get("id") or new_id()} for row in rows]
    if not rows:
        return 0
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(Face)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(Face.id)
    )
    with db.session() as session:
        return len(session.execute(statement).all())


def hamming_min(candidate: int, hashes: np.ndarray) -> int:
    """Smallest Hamming distance between a 64-bit hash and an array of them (65 if empty)."""
    if hashes.size == 0:
        return 65
    diff = np.bitwise_xor(hashes, np.uint64(candidate & 0xFFFFFFFFFFFFFFFF))
    return int(np.bitwise_count(diff).min())


def to_signed64(value: int) -> int:
    """A 64-bit unsigned hash as the signed integer a BIGINT column can hold."""
    return value - (1 << 64) if value >= 1 << 63 else value
