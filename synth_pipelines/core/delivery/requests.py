"""Dataset requests in the factory database: validation, state, reservations, download codes.

The API creates requests and reads them; the `dataset_package` asset reserves faces, packages
them and marks the request ready (or backordered, or failed). Reservations are leases: a face
reserved by a packaging run that died is free again once its lease passes, without any clean-up
job, because every reader treats an expired reservation as available.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from synth_pipelines.core.clock import aware, utcnow
from synth_pipelines.core.errors import (
    ConflictError,
    FieldError,
    GoneError,
    InvalidInputError,
    NotFoundError,
)
from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS, Bucket
from synth_pipelines.core.faces.inventory import free_for_exclusive
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import DatasetRequest, Face

FORMATS = ("zip", "webdataset")
IMAGE_SIZE_RANGE = (32, 1024)


class SpecError(FieldError):
    """A request spec that is not valid; `field` names the offending field."""


@dataclass(frozen=True)
class DatasetSpec:
    """What a researcher asks for: faces per bucket, archive format, image size, exclusivity."""

    buckets: dict[str, int]
    format: str = "zip"
    image_size: int = 256
    exclusive: bool = True

    @classmethod
    def parse(cls, raw: dict[str, Any], max_total: int) -> DatasetSpec:
        """Validate a raw spec; SpecError names the field and the accepted values."""
        buckets = raw.get("buckets")
        if not isinstance(buckets, dict) or not buckets:
            raise SpecError(
                "buckets",
                "buckets must map bucket names to counts, e.g. "
                '{"female/adult": 10}; buckets: ' + ", ".join(ALL_BUCKET_KEYS),
            )
        parsed: dict[str, int] = {}
        for name, count in buckets.items():
            try:
                key = Bucket.parse(name).key
            except InvalidInputError as exc:
                raise SpecError(f"buckets.{name}", str(exc)) from None
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise SpecError(
                    f"buckets.{name}", f"count for {key} must be an integer of at least 1"
                )
            parsed[key] = parsed.get(key, 0) + count
        total = sum(parsed.values())
        if total > max_total:
            raise SpecError(
                "buckets",
                f"{total} faces requested; at most {max_total} per request "
                "(SYNTH_MAX_DATASET_SIZE)",
            )
        fmt = raw.get("format", "zip")
        if fmt not in FORMATS:
            raise SpecError("format", f"format {fmt!r} is not one of: {', '.join(FORMATS)}")
        size = raw.get("image_size", 256)
        low, high = IMAGE_SIZE_RANGE
        if isinstance(size, bool) or not isinstance(size, int) or not low <= size <= high:
            raise SpecError("image_size", f"image_size must be an integer from {low} to {high}")
        exclusive = raw.get("exclusive", True)
        if not isinstance(exclusive, bool):
            raise SpecError("exclusive", "exclusive must be true or false")
        return cls(dict(sorted(parsed.items())), fmt, size, exclusive)

    @property
    def total(self) -> int:
        return sum(self.buckets.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "buckets": self.buckets,
            "format": self.format,
            "image_size": self.image_size,
            "exclusive": self.exclusive,
        }


def create_request(
    db: FactoryDatabase, spec: DatasetSpec, code_hash: str | None = None
) -> DatasetRequest:
    """A new pending request; `code_hash` is the sha256 of the download code given out."""
    with db.session() as session:
        request = DatasetRequest(
            spec=spec.as_dict(), status="pending", total=spec.total, code_hash=code_hash
        )
        session.add(request)
        session.flush()
        return request


def _find(session, request_id: str) -> DatasetRequest | None:
    """The request with this id, or None. (A NUL in an id never gets here: the API's text guard
    answers it with a 422.)"""
    return session.get(DatasetRequest, request_id)


def get_request(db: FactoryDatabase, request_id: str) -> DatasetRequest:
    with db.session() as session:
        request = _find(session, request_id)
    if request is None:
        raise NotFoundError(f"dataset request {request_id!r} does not exist")
    return request


def effective_status(request: DatasetRequest, now: datetime | None = None) -> str:
    """The status a client sees: packaging whose lease ran out is failed, ready past expiry is
    expired, even before the clean-up schedule has written it."""
    now = now or utcnow()
    if request.status == "packaging" and request.lease_until and aware(request.lease_until) < now:
        return "failed"
    if request.status == "ready" and request.expires_at and aware(request.expires_at) <= now:
        return "expired"
    return request.status


def retry_request(db: FactoryDatabase, request_id: str) -> DatasetRequest:
    """Put a failed request (or one whose packaging run died) back in the queue."""
    with db.session(locking=True) as session:
        request = _find(session, request_id)
        if request is None:
            raise NotFoundError(f"dataset request {request_id!r} does not exist")
        status = effective_status(request)
        if status != "failed":
            raise ConflictError(
                f"dataset request {request_id} is {status}; only failed requests can be retried"
            )
        request.status = "pending"
        request.error = None
        request.lease_until = None
        return request


# --- reservations -------------------------------------------------------------------------


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
        for key, count in spec.buckets.items():
            bucket = Bucket.parse(key)
            in_bucket = and_(Face.gender == bucket.gender, Face.age_group == bucket.age_group)
            if spec.exclusive:
                pool = free_for_exclusive(now)
                order = (Face.created_at, Face.id)
            else:
                pool = or_(free_for_exclusive(now), Face.status == "shared")
                order = ((Face.status != "shared"), Face.created_at, Face.id)
            query = select(Face).where(in_bucket, pool).order_by(*order).limit(count)
            if db.engine.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            faces = list(session.scalars(query))
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


def start_packaging(db: FactoryDatabase, request_id: str, run_id: str) -> DatasetRequest:
    """Count a packaging attempt; refuse requests that are not waiting to be packaged."""
    with db.session(locking=True) as session:
        request = session.get(DatasetRequest, request_id)
        if request is None:
            raise NotFoundError(f"dataset request {request_id!r} does not exist")
        status = effective_status(request)
        if status not in ("pending", "backordered", "failed"):
            raise ConflictError(f"dataset request {request_id} is {status}, not waiting")
        request.attempts += 1
        request.run_id = run_id
        return request


def mark_backordered(db: FactoryDatabase, request_id: str, shortfall: dict[str, int]) -> None:
    mark_waiting(
        db,
        request_id,
        "waiting for inventory: " + ", ".join(f"{k} short by {n}" for k, n in shortfall.items()),
    )


def mark_waiting(db: FactoryDatabase, request_id: str, reason: str) -> None:
    """Backorder a request with `reason` (short stock, or a delivery hold on its buckets)."""
    with db.session() as session:
        request = session.get(DatasetRequest, request_id)
        request.status, request.reason, request.lease_until = "backordered", reason, None


def mark_failed(db: FactoryDatabase, request_id: str, error: str) -> None:
    with db.session() as session:
        request = session.get(DatasetRequest, request_id)
        request.status, request.error, request.lease_until = "failed", error, None


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def mark_ready(
    db: FactoryDatabase,
    request_id: str,
    *,
    archive_key: str,
    archive_bytes: int,
    delivered: dict[str, int],
    ttl_seconds: int,
) -> tuple[str | None, DatasetRequest]:
    """Deliver: reserved faces become delivered and the request ready.

    The download code is normally issued when the request is made (the API returns it once);
    a request without one gets a new code here, returned in clear (only its hash is stored).
    """
    now = utcnow()
    with db.session(locking=True) as session:
        session.execute(
            update(Face)
            .where(Face.request_id == request_id, Face.status == "reserved")
            .values(status="delivered", delivered_at=now, reserved_until=None)
        )
        request = session.get(DatasetRequest, request_id)
        request.status = "ready"
        request.archive_key, request.archive_bytes = archive_key, archive_bytes
        request.delivered = delivered
        code = None
        if request.code_hash is None:
            code, request.code_hash = new_download_code()
        request.expires_at = now + timedelta(seconds=ttl_seconds)
        request.completed_at = now
        request.lease_until = None
        request.error = request.reason = None
        session.flush()
        session.expunge(request)
        return code, request


def new_download_code() -> tuple[str, str]:
    """A fresh download code in clear (shown once) and its hash (the only thing stored)."""
    code = secrets.token_urlsafe(24)
    return code, hash_code(code)


def authorize_download(db: FactoryDatabase, request_id: str, code: str) -> DatasetRequest:
    """The ready request `code` unlocks, counting the download.

    Unknown request or wrong code → NotFoundError (the same answer, so ids cannot be probed);
    an expired link → GoneError; a right code to a dataset not ready yet → ConflictError, not
    counted. Codes are compared as hashes in constant time.
    """
    with db.session(locking=True) as session:
        request = _find(session, request_id)
        valid = request is not None and request.code_hash is not None
        expected = request.code_hash if valid else hash_code("")
        if not hmac.compare_digest(expected, hash_code(code)) or not valid:
            raise NotFoundError("no dataset at this download link")
        status = effective_status(request)
        if status == "expired" or request.status == "expired":
            raise GoneError(f"the download link for dataset {request_id} has expired")
        if status != "ready" or not request.archive_key:
            raise ConflictError(f"dataset {request_id} is {status}, not ready to download yet")
        request.downloads += 1
        session.flush()
        session.expunge(request)
        return request


def expired_requests(db: FactoryDatabase, now: datetime | None = None) -> list[DatasetRequest]:
    now = now or utcnow()
    with db.session() as session:
        return list(
            session.scalars(
                select(DatasetRequest).where(
                    DatasetRequest.status == "ready", DatasetRequest.expires_at <= now
                )
            )
        )


def mark_expired(db: FactoryDatabase, request_id: str) -> None:
    with db.session() as session:
        request = session.get(DatasetRequest, request_id)
        request.status, request.archive_key = "expired", None


def requests_in(db: FactoryDatabase, statuses: tuple[str, ...]) -> list[DatasetRequest]:
    """Requests in any of `statuses`, oldest first (a sensor's query)."""
    return db.in_status(DatasetRequest, statuses)


def backordered_demand(db: FactoryDatabase) -> dict[str, int]:
    """Faces per bucket that backordered exclusive requests are waiting for."""
    demand = dict.fromkeys(ALL_BUCKET_KEYS, 0)
    for request in requests_in(db, ("backordered",)):
        if request.spec.get("exclusive", True):
            for key, count in request.spec["buckets"].items():
                demand[key] += count
    return demand


def request_counts(db: FactoryDatabase) -> dict[str, int]:
    with db.session() as session:
        rows = session.execute(
            select(DatasetRequest.status, func.count()).group_by(DatasetRequest.status)
        )
        return {status: count for status, count in rows}
