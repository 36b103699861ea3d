"""The factory database: migrations, inventory bookkeeping, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from synth_pipelines.core.errors import StorageError
from synth_pipelines.core.faces.inventory import (
    all_phashes,
    existing_sha256,
    hamming_min,
    insert_faces,
    inventory_levels,
    inventory_status_counts,
    seeds_in_batch,
    to_signed64,
)
from synth_pipelines.core.storage.database import VERSION_TABLE, FactoryDatabase
from synth_pipelines.core.storage.models import Base


def face_row(n: int, gender="female", age_group="adult", status="available", batch="b1") -> dict:
    return {
        "gender": gender,
        "age_group": age_group,
        "label_source": "classifier",
        "status": status,
        "object_key": f"faces/{gender}/{age_group}/{n:064x}.png",
        "sha256": f"{n:064x}",
        "phash": to_signed64((0xF0F0F0F0F0F0F0F0 + n) & (2**64 - 1)),
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
    assert factory_db.current_revision() == factory_db.head_revision() == "0007_check_names"


def test_insert_is_idempotent_on_sha256(factory_db: FactoryDatabase) -> None:
    rows = [face_row(i) for i in range(5)]
    assert insert_faces(factory_db, rows) == 5
    # A retried batch re-inserting the same images adds nothing.
    assert insert_faces(factory_db, [*rows, face_row(9)]) == 1
    assert inventory_levels(factory_db)["female/adult"] == 6
    assert existing_sha256(factory_db, [f"{1:064x}", "nope"]) == {f"{1:064x}"}
    assert seeds_in_batch(factory_db, "b1") == {2**62 + n for n in (0, 1, 2, 3, 4, 9)}


def test_levels_count_available_faces_per_bucket(factory_db: FactoryDatabase) -> None:
    insert_faces(factory_db, [face_row(i) for i in range(3)])
    insert_faces(factory_db, [face_row(10 + i, "male", "senior") for i in range(2)])
    insert_faces(factory_db, [face_row(20, "male", "senior", status="reserved")])
    levels = inventory_levels(factory_db)
    assert len(levels) == 10
    assert levels["female/adult"] == 3
    assert levels["male/senior"] == 2
    assert levels["female/child"] == 0
    counts = inventory_status_counts(factory_db)
    assert counts["male/senior"] == {"available": 2, "reserved": 1, "delivered": 0, "shared": 0}


def test_phashes_round_trip_through_bigint(factory_db: FactoryDatabase) -> None:
    insert_faces(factory_db, [face_row(i) for i in range(3)])
    hashes = all_phashes(factory_db)
    assert sorted(int(h) for h in hashes) == [0xF0F0F0F0F0F0F0F0 + i for i in range(3)]
    assert hamming_min(0xF0F0F0F0F0F0F0F0, hashes) == 0
    assert hamming_min(0xF0F0F0F0F0F0F0F0 ^ 0b111, hashes[:1]) == 3
    assert hamming_min(0, all_phashes(factory_db)[:0]) == 65


def test_unreachable_database_names_it() -> None:
    db = FactoryDatabase("postgresql+psycopg://postgres:secret@127.0.0.1:1/factory")
    with pytest.raises(StorageError, match=r"127\.0\.0\.1:1/factory is not reachable") as info:
        db.upgrade()
    assert "secret" not in str(info.value)
