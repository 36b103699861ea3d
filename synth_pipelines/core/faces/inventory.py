"""Face inventory bookkeeping in the factory database: levels, hashes, idempotent inserts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, func, insert, or_, select

from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import Face, FacePhashBand, new_id

_MASK64 = 0xFFFFFFFFFFFFFFFF
# The perceptual-hash bands of `face_phash_bands`; a distance up to BANDED_DISTANCE is looked up
# through them, a larger one (SYNTH_PHASH_DISTANCE > 4) scans every stored hash.
BAND_WIDTHS = (13, 13, 13, 13, 12)
BANDED_DISTANCE = len(BAND_WIDTHS) - 1
# Any constant works: it names the PostgreSQL advisory lock that serialises face inserts.
_PG_FACE_INSERT_LOCK = 804213
# Rows per INSERT statement (SQLite binds at most 32766 parameters; a face row has ~25).
INSERT_BATCH = 500


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


@dataclass
class FaceInsert:
    """What `insert_faces` did with each row it was given."""

    added: list[dict[str, Any]] = field(default_factory=list)
    # Rows whose image (sha256) is stored already: a retried batch, or a concurrent writer.
    exact_duplicates: list[dict[str, Any]] = field(default_factory=list)
    # Rows within the near-duplicate distance of a stored face (or of an earlier row here).
    near_duplicates: list[dict[str, Any]] = field(default_factory=list)


def phash_band_keys(phash: int) -> list[int]:
    """The band keys of a 64-bit hash: its bits cut into five bands (13+13+13+13+12 bits), each
    as `band << 13 | bits`. Two hashes within Hamming distance 4 share at least one band
    (four differing bits touch at most four bands), so the bands find every near-duplicate
    candidate with an index lookup instead of a scan."""
    value, keys, offset = phash & _MASK64, [], 0
    for band, width in enumerate(BAND_WIDTHS):
        keys.append(band << 13 | ((value >> offset) & ((1 << width) - 1)))
        offset += width
    return keys


def _stored_hashes_near(session, phashes: list[int], max_distance: int) -> np.ndarray:
    """Stored hashes that may lie within `max_distance` of any of `phashes`: those sharing a band
    when the bands guarantee it (distance ≤ 4), every stored hash otherwise."""
    if not phashes:
        return np.empty(0, dtype=np.uint64)
    if max_distance <= BANDED_DISTANCE:
        keys = sorted({key for phash in phashes for key in phash_band_keys(phash)})
        query = (
            select(Face.phash)
            .join(FacePhashBand, FacePhashBand.face_id == Face.id)
            .where(FacePhashBand.band_key.in_(keys))
            .distinct()
        )
    else:
        query = select(Face.phash)
    values = session.scalars(query).all()
    return np.asarray(values, dtype=np.int64).view(np.uint64)


def _lock_face_inserts(session) -> None:
    """Serialise face inserts: every writer checks against what the one before it committed.
    SQLite transactions here take the write lock at BEGIN (see database.py); PostgreSQL takes a
    transaction-scoped advisory lock, released at commit."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_PG_FACE_INSERT_LOCK)))


def insert_faces(
    db: FactoryDatabase, rows: Iterable[dict[str, Any]], *, phash_distance: int
) -> FaceInsert:
    """Insert face rows in one transaction, keeping duplicates out by construction.

    Under a lock that serialises every face insert, each row is checked against the committed
    inventory and the rows before it: one whose sha256 is stored is an exact duplicate (a
    retried batch re-inserting its own faces adds nothing), one within `phash_distance` bits of
    a stored face's perceptual hash is a near-duplicate, and neither is inserted. Concurrent
    refills of different buckets therefore cannot add a near-duplicate pair between them, which
    each run's own in-memory check (made against the inventory at its start) cannot see.
    """
    rows = [{**row, "id": row.get("id") or new_id()} for row in rows]
    outcome = FaceInsert()
    if not rows:
        return outcome
    with db.session(locking=True) as session:
        _lock_face_inserts(session)
        digests = {row["sha256"] for row in rows}
        seen = set(session.scalars(select(Face.sha256).where(Face.sha256.in_(digests))))
        fresh = [row["phash"] for row in rows if row["sha256"] not in seen]
        known = _stored_hashes_near(session, fresh, phash_distance)
        for row in rows:
            if row["sha256"] in seen:
                outcome.exact_duplicates.append(row)
            elif hamming_min(row["phash"], known) <= phash_distance:
                outcome.near_duplicates.append(row)
            else:
                outcome.added.append(row)
                seen.add(row["sha256"])
                known = np.append(known, np.uint64(row["phash"] & _MASK64))
        for start in range(0, len(outcome.added), INSERT_BATCH):
            batch = outcome.added[start : start + INSERT_BATCH]
            session.execute(insert(Face).values(batch))
            bands = [
                {"band_key": key, "face_id": row["id"]}
                for row in batch
                for key in phash_band_keys(row["phash"])
            ]
            session.execute(insert(FacePhashBand).values(bands))
    return outcome


def hamming_min(candidate: int, hashes: np.ndarray) -> int:
    """Smallest Hamming distance between a 64-bit hash and an array of them (65 if empty)."""
    if hashes.size == 0:
        return 65
    diff = np.bitwise_xor(hashes, np.uint64(candidate & 0xFFFFFFFFFFFFFFFF))
    return int(np.bitwise_count(diff).min())


def to_signed64(value: int) -> int:
    """A 64-bit unsigned hash as the signed integer a BIGINT column can hold."""
    return value - (1 << 64) if value >= 1 << 63 else value
