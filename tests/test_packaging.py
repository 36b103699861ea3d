"""The packaging use case on its own, without Dagster: Ready, Backordered, Waiting, failure,
and which backorders the inventory can serve; on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from synth_pipelines.core.checks.holds import record_failure
from synth_pipelines.core.delivery.packaging import (
    Backordered,
    Ready,
    Waiting,
    archive_key_for,
    expire_archives,
    package_request,
    servable_backorders,
)
from synth_pipelines.core.delivery.requests import get_request, requests_in
from synth_pipelines.core.delivery.verify import verify_archive
from synth_pipelines.core.errors import ConflictError
from synth_pipelines.core.faces.inventory import insert_faces, inventory_levels
from tests.helpers import request as new_request
from tests.test_factory_db import face_row

LEASE, TTL = 600, 3600


def stock(db, store, bucket: str, count: int, start: int = 0) -> None:
    """`count` faces in `bucket`, each a real PNG in the store."""
    gender, age_group = bucket.split("/")
    rows = []
    for n in range(start, start + count):
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (n % 256, 80, 160)).save(buffer, format="PNG")
        png = buffer.getvalue()
        row = face_row(n, gender, age_group)
        row["sha256"] = hashlib.sha256(png).hexdigest()
        row["width"] = row["height"] = 64
        store.put_bytes(row["object_key"], png, content_type="image/png")
        rows.append(row)
    insert_faces(db, rows, phash_distance=4)


def servable(db) -> list:
    return servable_backorders(db, requests_in(db, ("backordered",)))


def package(db, store, request_id: str, run_id: str = "run-1"):
    return package_request(db, store, request_id, run_id, lease_seconds=LEASE, ttl_seconds=TTL)


def test_a_covered_request_is_ready_with_a_verified_archive(factory_db, store, tmp_path) -> None:
    stock(factory_db, store, "female/adult", 3)
    request_id = new_request(factory_db, {"female/adult": 2}, image_size=64)
    outcome = package(factory_db, store, request_id)
    assert isinstance(outcome, Ready)
    assert outcome.faces == 2 and outcome.archive.faces_per_bucket == {"female/adult": 2}
    assert outcome.archive.key == archive_key_for(request_id, "zip")
    assert outcome.request.status == "ready" and outcome.queue_to_ready_seconds >= 0
    path = tmp_path / "dataset.zip"
    path.write_bytes(store.get_bytes(outcome.archive.key))
    manifest = verify_archive(path)
    assert manifest["counts"] == {"female/adult": 2, "total": 2}
    assert inventory_levels(factory_db)["female/adult"] == 1
    # The same request again (a duplicate run) is refused, not packaged twice.
    with pytest.raises(ConflictError, match="ready"):
        package(factory_db, store, request_id, "run-2")


def test_short_stock_backorders_without_reserving_anything(factory_db, store) -> None:
    stock(factory_db, store, "female/adult", 2)
    request_id = new_request(factory_db, {"female/adult": 2, "male/child": 1})
    outcome = package(factory_db, store, request_id)
    assert outcome == Backordered(request_id, {"male/child": 1})
    request = get_request(factory_db, request_id)
    assert request.status == "backordered" and "male/child short by 1" in request.reason
    assert inventory_levels(factory_db)["female/adult"] == 2


def test_a_held_bucket_waits_and_only_covered_unheld_backorders_are_servable(
    factory_db, store
) -> None:
    stock(factory_db, store, "female/adult", 3)
    stock(factory_db, store, "male/adult", 1, start=100)
    record_failure(factory_db, "blur", "face_inventory", ["male/adult"], "blurry", "r")
    held = new_request(factory_db, {"male/adult": 1})
    outcome = package(factory_db, store, held)
    assert isinstance(outcome, Waiting) and "male/adult (face_inventory:blur)" in outcome.reason
    assert get_request(factory_db, held).status == "backordered"
    # 3 free: the first request takes 2; the second (2) is backordered with 1 left.
    first = new_request(factory_db, {"female/adult": 2})
    second = new_request(factory_db, {"female/adult": 2})
    assert isinstance(package(factory_db, store, first), Ready)
    assert isinstance(package(factory_db, store, second), Backordered)
    assert servable(factory_db) == []  # held is held, second is short
    stock(factory_db, store, "female/adult", 1, start=200)
    # Now second is covered; held is still not servable although its face is in stock.
    assert [r.id for r in servable(factory_db)] == [second]


def test_a_failed_write_releases_the_faces_and_marks_the_request_failed(factory_db, store) -> None:
    stock(factory_db, store, "female/adult", 2)
    store.delete(face_row(1)["object_key"])  # one image is gone from the store
    request_id = new_request(factory_db, {"female/adult": 2})
    with pytest.raises(Exception) as caught:
        package(factory_db, store, request_id)
    assert any("released 2 faces" in note for note in caught.value.__notes__)
    assert get_request(factory_db, request_id).status == "failed"
    assert inventory_levels(factory_db)["female/adult"] == 2


def test_expired_archives_are_deleted(factory_db, store) -> None:
    from datetime import timedelta

    from synth_pipelines.core.clock import utcnow

    stock(factory_db, store, "female/adult", 1)
    request_id = new_request(factory_db, {"female/adult": 1}, image_size=64)
    ready = package(factory_db, store, request_id)
    assert expire_archives(factory_db, store) == []
    assert expire_archives(factory_db, store, utcnow() + timedelta(seconds=TTL + 1)) == [request_id]
    assert not store.exists(ready.archive.key)
    assert get_request(factory_db, request_id).status == "expired"
