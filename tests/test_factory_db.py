"""The factory database: migrations, inventory bookkeeping, on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from synth_pipelines.core.clock import aware, utcnow
from synth_pipelines.core.delivery.requests import create_request, get_request, mark_ready
from synth_pipelines.core.delivery.spec import DatasetSpec
from synth_pipelines.core.errors import NotFoundError, StorageError
from synth_pipelines.core.faces.inventory import (
    BANDED_DISTANCE,
    all_phashes,
    existing_sha256,
    hamming_min,
    insert_faces,
    inventory_levels,
    inventory_status_counts,
    phash_band_keys,
    seeds_in_batch,
    to_signed64,
)
from synth_pipelines.core.security.accounts import authenticate, create_api_key
from synth_pipelines.core.storage.database import VERSION_TABLE, FactoryDatabase
from synth_pipelines.core.storage.models import Base, DatasetRequest, FacePhashBand

DISTANCE = 4  # SYNTH_PHASH_DISTANCE's default


def phash_of(n: int) -> int:
    """A well-spread 64-bit perceptual hash for test face `n`: distinct faces are far apart."""
    return int.from_bytes(hashlib.sha256(f"phash {n}".encode()).digest()[:8], "big")


def face_row(n: int, gender="female", age_group="adult", status="available", batch="b1") -> dict:
    return {
        "gender": gender,
        "age_group": age_group,
        "label_source": "classifier",
        "status": status,
        "object_key": f"faces/{gender}/{age_group}/{n:064x}.png",
        "sha256": f"{n:064x}",
        "phash": to_signed64(phash_of(n)),
        "width": 256,
        "height": 256,
        "generator": "test",
        "seed": 2**62 + n,
        "batch_id": batch,
        "intended_gender": gender,
        "intended_age_group": age_group,
        "attributes": {"age": 40, "glasses": False},
        "classifier": "test",
        "face_detected": True,
        "predicted_gender": gender,
        "gender_confidence": 0.9,
        "predicted_age": 40.0,
        "predicted_age_group": age_group,
        "age_confidence": 0.3,
    }


def test_migrated_schema_matches_models(factory_db: FactoryDatabase) -> None:
    assert factory_db.current_revision() == factory_db.head_revision()
    with factory_db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        diffs = compare_metadata(context, Base.metadata)
    assert diffs == []


def test_upgrade_is_idempotent(factory_db: FactoryDatabase) -> None:
    factory_db.upgrade()
    factory_db.upgrade()
    assert (
        factory_db.current_revision() == factory_db.head_revision() == "0014_dataset_requests_queue"
    )


def insert(db: FactoryDatabase, rows: list[dict], distance: int = DISTANCE):
    return insert_faces(db, rows, phash_distance=distance)


def test_insert_is_idempotent_on_sha256(factory_db: FactoryDatabase) -> None:
    rows = [face_row(i) for i in range(5)]
    assert len(insert(factory_db, rows).added) == 5
    # A retried batch re-inserting the same images adds nothing.
    again = insert(factory_db, [*rows, face_row(9)])
    assert [row["sha256"] for row in again.added] == [face_row(9)["sha256"]]
    assert len(again.exact_duplicates) == 5 and again.near_duplicates == []
    assert inventory_levels(factory_db)["female/adult"] == 6
    assert existing_sha256(factory_db, [f"{1:064x}", "nope"]) == {f"{1:064x}"}
    assert seeds_in_batch(factory_db, "b1") == {2**62 + n for n in (0, 1, 2, 3, 4, 9)}


def test_levels_count_available_faces_per_bucket(factory_db: FactoryDatabase) -> None:
    insert(factory_db, [face_row(i) for i in range(3)])
    insert(factory_db, [face_row(10 + i, "male", "senior") for i in range(2)])
    insert(factory_db, [face_row(20, "male", "senior", status="reserved")])
    levels = inventory_levels(factory_db)
    assert len(levels) == 10
    assert levels["female/adult"] == 3
    assert levels["male/senior"] == 2
    assert levels["female/child"] == 0
    counts = inventory_status_counts(factory_db)
    assert counts["male/senior"] == {"available": 2, "reserved": 1, "delivered": 0, "shared": 0}


def test_phashes_round_trip_through_bigint(factory_db: FactoryDatabase) -> None:
    insert(factory_db, [face_row(i) for i in range(3)])
    hashes = all_phashes(factory_db)
    assert sorted(int(h) for h in hashes) == sorted(phash_of(i) for i in range(3))
    assert any(h >= 2**63 for h in map(int, hashes))  # the sign bit survives the round trip
    assert hamming_min(phash_of(0), hashes) == 0
    assert hamming_min(phash_of(0) ^ 0b111, hashes[hashes == np.uint64(phash_of(0))]) == 3
    assert hamming_min(0, all_phashes(factory_db)[:0]) == 65


def test_unreachable_database_names_it() -> None:
    db = FactoryDatabase("postgresql+psycopg://postgres:secret@127.0.0.1:1/factory")
    with pytest.raises(StorageError, match=r"127\.0\.0\.1:1/factory is not reachable") as info:
        db.upgrade()
    assert "secret" not in str(info.value)


def flip(value: int, *bits: int) -> int:
    for bit in bits:
        value ^= 1 << int(bit)
    return value


def near_row(n: int, phash: int, **kwargs) -> dict:
    """Face `n` (its own image and digest) with the perceptual hash `phash`."""
    return {**face_row(n, **kwargs), "phash": to_signed64(phash)}


def test_near_duplicates_are_refused_at_insert(factory_db: FactoryDatabase) -> None:
    base = phash_of(0)
    assert len(insert(factory_db, [near_row(0, base)]).added) == 1
    # Another image whose hash is 3 bits away, in another bucket: a near-duplicate.
    refused = insert(factory_db, [near_row(1, flip(base, 0, 30, 63), gender="male")])
    assert refused.added == [] and len(refused.near_duplicates) == 1
    # Within one call the rows are checked against each other too; 5 bits away is distinct.
    outcome = insert(factory_db, [near_row(2, flip(base, 1, 14, 27, 40, 53)), near_row(3, base)])
    assert [row["sha256"] for row in outcome.added] == [face_row(2)["sha256"]]
    assert [row["sha256"] for row in outcome.near_duplicates] == [face_row(3)["sha256"]]
    assert inventory_levels(factory_db)["female/adult"] == 2
    with factory_db.session() as session:
        assert session.query(FacePhashBand).count() == 2 * 5


def test_band_keys_share_a_band_for_every_pair_within_distance_4() -> None:
    rng = np.random.default_rng(7)
    for _ in range(3000):
        value = int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2))
        changed = flip(value, *rng.choice(64, size=int(rng.integers(0, 5)), replace=False))
        assert set(phash_band_keys(value)) & set(phash_band_keys(changed))
    # One bit in each of the five bands: no band is shared, so wider distances must scan.
    spread = flip(value, 0, 13, 26, 39, 52)
    assert not set(phash_band_keys(value)) & set(phash_band_keys(spread))


def test_a_distance_beyond_the_bands_scans_every_stored_hash(factory_db) -> None:
    base = phash_of(0)
    insert(factory_db, [near_row(0, base)], distance=8)
    far = flip(base, 0, 13, 26, 39, 52, 60, 61)  # 7 bits, touching all five bands
    assert BANDED_DISTANCE == 4
    assert len(insert(factory_db, [near_row(1, far)], distance=8).near_duplicates) == 1
    assert len(insert(factory_db, [near_row(1, far)], distance=4).added) == 1


def test_concurrent_writers_cannot_both_insert_near_duplicates(factory_db) -> None:
    """Eight writers, each with five faces near-duplicating the other writers' faces at the same
    position, commit at once: exactly one face per position gets in, and no stored pair lies
    within the distance (what each run's own check, made before the others commit, misses)."""
    writers, positions = 8, 5
    barrier = threading.Barrier(writers)
    outcomes = [None] * writers

    def write(w: int) -> None:
        rows = [
            near_row(100 * w + p, flip(phash_of(p), w), gender="female" if w % 2 else "male")
            for p in range(positions)
        ]
        barrier.wait()
        outcomes[w] = insert(factory_db, rows)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(o.added) for o in outcomes) == positions
    assert sum(len(o.near_duplicates) for o in outcomes) == positions * (writers - 1)
    hashes = all_phashes(factory_db)
    assert len(hashes) == positions
    for i, value in enumerate(hashes):
        assert hamming_min(int(value), np.delete(hashes, i)) > DISTANCE


def test_upgrading_indexes_the_faces_stored_before_the_band_table(tmp_path) -> None:
    db = FactoryDatabase(f"sqlite:///{tmp_path / 'old.db'}")
    db.upgrade("0007_check_names")
    rows = [face_row(i) for i in range(3)]
    with db.engine.begin() as conn:
        for row in rows:
            columns = {**row, "id": f"{row['seed']:032x}"[-32:], "created_at": "2026-12-01"}
            conn.exec_driver_sql(
                f"INSERT INTO faces ({', '.join(columns)}) VALUES "
                f"({', '.join('?' for _ in columns)})",
                tuple(str(v) if isinstance(v, dict) else v for v in columns.values()),
            )
    db.upgrade()
    with db.session() as session:
        assert session.query(FacePhashBand).count() == 3 * 5
    # The old faces are found: a near-duplicate of one is refused.
    assert len(insert(db, [near_row(9, flip(phash_of(1), 5))]).near_duplicates) == 1
    db.dispose()


def test_a_status_read_waits_for_no_writer(factory_db: FactoryDatabase) -> None:
    """While another thread holds a write transaction open, a dataset's status and an API key
    are read at once (on SQLite a read-only session takes no write lock), and the writer's
    uncommitted row is not seen."""
    spec = DatasetSpec.parse({"buckets": {"female/adult": 1}}, 10)
    existing = create_request(factory_db, spec)
    token = create_api_key(factory_db, "reader", "owner")
    writing, release = threading.Event(), threading.Event()
    unseen: list[str] = []

    def writer() -> None:
        with factory_db.session() as session:
            row = DatasetRequest(spec=spec.as_dict(), status="pending", total=1)
            session.add(row)
            session.flush()  # the write lock (SQLite) / the row lock (PostgreSQL) is held
            unseen.append(row.id)
            writing.set()
            release.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(10)
        reads: list[object] = []
        reader = threading.Thread(
            target=lambda: reads.extend(
                [get_request(factory_db, existing.id), authenticate(factory_db, token)]
            )
        )
        reader.start()
        reader.join(5)  # SQLite's busy_timeout is 30 s: a reader waiting on the writer fails here
        assert not reader.is_alive(), "the status read waited for the writer"
        assert reads[0].id == existing.id and reads[1].user == "reader"
        with pytest.raises(NotFoundError):
            get_request(factory_db, unseen[0])
    finally:
        release.set()
        thread.join(10)
    assert get_request(factory_db, unseen[0]).status == "pending"


def _aged_request(db: FactoryDatabase, seconds_ago: float) -> str:
    request = create_request(db, DatasetSpec.parse({"buckets": {"female/adult": 1}}, 100))
    with db.session() as session:
        row = session.get(DatasetRequest, request.id)
        row.created_at = utcnow() - timedelta(seconds=seconds_ago)
    return request.id


def test_the_dashboards_completion_figures_are_the_databases_and_match_numpy(
    factory_db: FactoryDatabase,
) -> None:
    from synth_pipelines.api.admin import completion_summary

    with factory_db.session() as session:
        assert completion_summary(session) == {
            "count": 0, "mean": None, "downloads": 0, "p50": None, "p95": None
        }  # fmt: skip
    ids = [_aged_request(factory_db, 7.25 * k * k + 3) for k in range(13)]
    _aged_request(factory_db, 100)  # still pending: not counted
    for i, request_id in enumerate(ids):
        mark_ready(factory_db, request_id, archive_key=f"k{i}", archive_bytes=1,
                   delivered={"female/adult": 1}, ttl_seconds=60)  # fmt: skip
        with factory_db.session() as session:
            session.get(DatasetRequest, request_id).downloads = i % 3
    with factory_db.session() as session:
        rows = session.query(DatasetRequest).filter(DatasetRequest.id.in_(ids)).all()
        seconds = [(aware(r.completed_at) - aware(r.created_at)).total_seconds() for r in rows]
        assert sorted(r.ready_seconds for r in rows) == pytest.approx(sorted(seconds), abs=1e-3)
        summary = completion_summary(session, percents=(0, 50, 95, 100))
    assert summary["count"] == 13 and summary["downloads"] == sum(i % 3 for i in range(13))
    assert summary["mean"] == pytest.approx(np.mean(seconds), abs=1e-3)
    for q in (0, 50, 95, 100):
        assert summary[f"p{q}"] == pytest.approx(np.percentile(seconds, q), abs=1e-3)


def test_upgrading_fills_in_the_ready_seconds_of_requests_made_before(
    database_url: str,
) -> None:
    db = FactoryDatabase(database_url)
    db.upgrade("0011_multitable_jobs")
    with db.engine.begin() as conn:
        for i, (created, completed) in enumerate(
            [("2026-12-01 10:00:00", "2026-12-01 10:00:42.5"), ("2026-12-01 11:00:00", None)]
        ):
            conn.execute(
                text(
                    "INSERT INTO dataset_requests (id, spec, status, total, attempts, downloads, "
                    "created_at, completed_at) VALUES (:id, :spec, :status, 1, 1, 0, :created, "
                    ":completed)"
                ),
                {"id": f"r{i}", "spec": "{}", "status": "ready" if completed else "pending",
                 "created": created, "completed": completed},
            )  # fmt: skip
    db.upgrade()
    with db.session() as session:
        assert session.get(DatasetRequest, "r0").ready_seconds == pytest.approx(42.5, abs=1e-3)
        assert session.get(DatasetRequest, "r1").ready_seconds is None
    db.dispose()
