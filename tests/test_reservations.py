"""Reservations under contention, on SQLite (write lock) and PostgreSQL (SKIP LOCKED)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from synth_pipelines.core.delivery.requests import create_request, mark_ready
from synth_pipelines.core.delivery.reservations import reserve_faces
from synth_pipelines.core.delivery.spec import DatasetSpec
from synth_pipelines.core.faces.inventory import insert_faces, inventory_levels
from synth_pipelines.core.storage.models import Face
from tests.test_factory_db import face_row


def test_parallel_exclusive_requests_never_share_a_face(factory_db) -> None:
    insert_faces(factory_db, [face_row(i) for i in range(30)], phash_distance=4)  # female/adult
    spec = DatasetSpec(buckets={"female/adult": 4})
    ids = [create_request(factory_db, spec).id for _ in range(20)]

    def attempt(request_id: str) -> bool:
        reservation = reserve_faces(factory_db, request_id, spec, lease_seconds=60)
        if reservation.complete:
            mark_ready(
                factory_db,
                request_id,
                archive_key="k",
                archive_bytes=1,
                delivered={"female/adult": 4},
                ttl_seconds=60,
            )
        return reservation.complete

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(attempt, ids))
    assert sum(outcomes) == 7  # 30 faces cover 7 requests of 4
    with factory_db.session() as session:
        delivered = session.execute(
            select(Face.id, Face.request_id).where(Face.status == "delivered")
        ).all()
    assert len(delivered) == 28
    assert len({face_id for face_id, _ in delivered}) == 28  # no face twice
    winners = {request_id for request_id, ok in zip(ids, outcomes, strict=True) if ok}
    assert {request_id for _, request_id in delivered} == winners
    assert inventory_levels(factory_db)["female/adult"] == 2
