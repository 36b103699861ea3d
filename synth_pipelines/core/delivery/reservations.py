"""Reservations: a request's faces taken from the inventory in one transaction, as leases.

A face reserved by a packaging run that died is free again once its lease passes, without any
clean-up job, because every reader treats an expired reservation as available.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, select, update

from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.delivery.spec import DatasetSpec
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import DatasetRequest, Face


@dataclass
class Reservation:
    """The outcome of trying to reserve a request's faces."""

    faces: dict[str, list[Face]]
    shortfall: dict[str, int]  # bucket -> faces missing; empty when everything was reserved

    @property
    def complete(self) -> bool:
        return not self.shortfall


def reserve_faces(
    db: FactoryDatabase, request_id: str, spec: DatasetSpec, lease_seconds: int, run_id: str = ""
) -> Reservation:
    """Reserve every face the request needs in one transaction, or none of them.

    Exclusive requests take free faces (row locks with SKIP LOCKED on PostgreSQL, the database
    write lock on SQLite), so two requests never receive the same face. Non-exclusive requests
    take already-shared faces first, then free ones, which become shared. Any reservation this
    request still holds (an earlier attempt that died) is released first.
    """
    now = utcnow()
    with db.session(locking=True) as session:
        session.execute(
            update(Face)
            .where(Face.request_id == request_id, Face.status == "reserved")
            .values(status="available", request_id=None, reserved_at=None, reserved_until=None)
        )
        chosen: dict[str, list[Face]] = {}
        shortfall: dict[str, int] = {}
        lock = db.engine.dialect.name == "postgresql"
        for key, count in spec.buckets.items():
            bucket = Bucket.parse(key)
            in_bucket = and_(Face.gender == bucket.gender, Face.age_group == bucket.age_group)
            # Each pool is one status, oldest first: a range of the (bucket, status, created_at,
            # id) index, read for `count` rows however large the inventory (a single query over
            # an OR of statuses sorted every face of the bucket). Shared faces go first to a
            # non-exclusive request; then faces a dead run held; then available ones.
            pools = [
                and_(Face.status == "reserved", Face.reserved_until < now),
                Face.status == "available",
            ]
            if not spec.exclusive:
                pools.insert(0, Face.status == "shared")
            faces: list[Face] = []
            for pool in pools:
                if len(faces) == count:
                    break
                query = (
                    select(Face)
                    .where(in_bucket, pool)
                    .order_by(Face.created_at, Face.id)
                    .limit(count - len(faces))
                )
                if lock:
                    query = query.with_for_update(skip_locked=True)
                faces.extend(session.scalars(query))
            chosen[key] = faces
            if len(faces) < count:
                shortfall[key] = count - len(faces)
        if shortfall:
            session.rollback()
            return Reservation({}, shortfall)
        until = now + timedelta(seconds=lease_seconds)
        for faces in chosen.values():
            for face in faces:
                if spec.exclusive:
                    face.status, face.request_id = "reserved", request_id
                    face.reserved_at, face.reserved_until = now, until
                else:
                    face.status = "shared"
        request = session.get(DatasetRequest, request_id)
        if request is not None:
            request.status, request.lease_until = "packaging", until
            request.started_at = request.started_at or now
            request.run_id = run_id or request.run_id
            request.reason = None
        session.flush()
        session.expunge_all()
        return Reservation(chosen, {})


def release_reservations(db: FactoryDatabase, request_id: str) -> int:
    """Give a request's reserved faces back to the inventory; returns how many."""
    with db.session() as session:
        result = session.execute(
            update(Face)
            .where(Face.request_id == request_id, Face.status == "reserved")
            .values(status="available", request_id=None, reserved_at=None, reserved_until=None)
        )
        return int(result.rowcount or 0)
