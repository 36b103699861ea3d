"""Packaging one dataset request: the use case the `dataset_package` asset calls.

    start -> held by a failed check? -> Waiting
          -> reserve every face in one transaction, short? -> Backordered
          -> stream the archive, issue the link -> Ready

Anything that goes wrong after the reservation (a store error, a terminated run) gives the faces
back and marks the request failed, so it can be retried with nothing lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from synth_pipelines.core.checks.holds import pause_reason, paused_buckets
from synth_pipelines.core.clock import aware, utcnow
from synth_pipelines.core.delivery.archive import ArchiveFace, ArchiveResult, write_dataset_archive
from synth_pipelines.core.delivery.requests import (
    expired_requests,
    mark_backordered,
    mark_expired,
    mark_failed,
    mark_ready,
    mark_waiting,
    start_packaging,
)
from synth_pipelines.core.delivery.reservations import release_reservations, reserve_faces
from synth_pipelines.core.delivery.spec import DatasetSpec, request_spec
from synth_pipelines.core.faces.inventory import inventory_levels
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import DatasetRequest, Face
from synth_pipelines.core.storage.object_store import ObjectStore

ARCHIVE_SUFFIX = {"zip": "zip", "webdataset": "tar"}


@dataclass(frozen=True)
class Ready:
    """Packaged and delivered: the archive is in the store and the link is live."""

    request: DatasetRequest
    spec: DatasetSpec
    archive: ArchiveResult
    seconds: float  # reservation to ready

    @property
    def faces(self) -> int:
        return sum(self.archive.faces_per_bucket.values())

    @property
    def queue_to_ready_seconds(self) -> float:
        return (aware(self.request.completed_at) - aware(self.request.created_at)).total_seconds()


@dataclass(frozen=True)
class Backordered:
    """Not enough free faces: nothing was reserved; the request waits for the refill."""

    request_id: str
    shortfall: dict[str, int]  # bucket -> faces missing


@dataclass(frozen=True)
class Waiting:
    """A failed check holds one of the request's buckets; nothing was reserved."""

    request_id: str
    reason: str


Packaged = Ready | Backordered | Waiting


def archive_key_for(request_id: str, fmt: str) -> str:
    return f"datasets/{request_id}/synth-faces-{request_id}.{ARCHIVE_SUFFIX[fmt]}"


def archive_face(face: Face) -> ArchiveFace:
    """What an archive records of an inventory face."""
    return ArchiveFace(
        id=face.id,
        gender=face.gender,
        age_group=face.age_group,
        object_key=face.object_key,
        sha256=face.sha256,
        width=face.width,
        height=face.height,
        generator=face.generator,
        seed=face.seed,
        classifier=face.classifier,
        face_detected=face.face_detected,
        predicted_gender=face.predicted_gender,
        predicted_age=face.predicted_age,
        gender_confidence=face.gender_confidence,
        age_confidence=face.age_confidence,
        attributes=face.attributes,
    )


def package_request(
    db: FactoryDatabase,
    store: ObjectStore,
    request_id: str,
    run_id: str,
    *,
    lease_seconds: int,
    ttl_seconds: int,
) -> Packaged:
    """Package `request_id` in this run. ConflictError when the request is not waiting to be
    packaged (another run already handled it); any other error leaves the request failed, its
    faces released, and re-raises with a note saying how many were released."""
    request = start_packaging(db, request_id, run_id)
    spec = request_spec(request)
    held = pause_reason(paused_buckets(db), list(spec.buckets))
    if held:
        mark_waiting(db, request_id, held)
        return Waiting(request_id, held)
    started = time.perf_counter()
    reservation = reserve_faces(db, request_id, spec, lease_seconds, run_id)
    if not reservation.complete:
        mark_backordered(db, request_id, reservation.shortfall)
        return Backordered(request_id, reservation.shortfall)
    try:
        faces = [archive_face(face) for faces in reservation.faces.values() for face in faces]
        archive = write_dataset_archive(
            store,
            archive_key_for(request_id, spec.format),
            faces,
            request_id=request_id,
            spec=spec.as_dict(),
            fmt=spec.format,
            image_size=spec.image_size,
        )
        _, request = mark_ready(
            db,
            request_id,
            archive_key=archive.key,
            archive_bytes=archive.bytes,
            delivered=archive.faces_per_bucket,
            ttl_seconds=ttl_seconds,
        )
    except BaseException as exc:  # also a terminated run: give the faces back first
        released = release_reservations(db, request_id)
        mark_failed(db, request_id, f"{exc.__class__.__name__}: {exc}")
        exc.add_note(f"packaging {request_id} failed; released {released} faces")
        raise
    return Ready(request, spec, archive, time.perf_counter() - started)


def servable_backorders(
    db: FactoryDatabase, backordered: list[DatasetRequest]
) -> list[DatasetRequest]:
    """Those of `backordered` (oldest first, as `requests_in` gives them) that the inventory
    covers now and no failed check holds, first come, first served: an exclusive request counts
    its faces off the free stock, so a later request is not promised the same faces."""
    free = inventory_levels(db)
    paused = paused_buckets(db)
    servable = []
    for request in backordered:
        spec = request_spec(request)
        covered = all(free[key] >= count for key, count in spec.buckets.items())
        if covered and not pause_reason(paused, list(spec.buckets)):
            servable.append(request)
        if spec.exclusive:
            for key, count in spec.buckets.items():
                free[key] -= count
    return servable


def expire_archives(
    db: FactoryDatabase, store: ObjectStore, now: datetime | None = None
) -> list[str]:
    """Delete the archives whose link expired and mark their requests expired; their ids."""
    expired = expired_requests(db, now or utcnow())
    for request in expired:
        if request.archive_key:
            store.delete(request.archive_key)
        mark_expired(db, request.id)
    return [request.id for request in expired]
