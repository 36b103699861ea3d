"""Dataset requests in the factory database: their lifecycle.

The API creates requests and reads them; the `dataset_package` asset (through
`core.delivery.packaging`) starts packaging, and marks the request ready, backordered or failed.
Status moves pending -> packaging -> ready -> expired, or to backordered (short stock, or a
delivery hold) and failed, both of which are retried.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, tuple_, update

from synth_pipelines.core.clock import aware, utcnow
from synth_pipelines.core.delivery.download_codes import new_download_code
from synth_pipelines.core.delivery.spec import DatasetSpec, request_spec
from synth_pipelines.core.delivery.status import effective_status
from synth_pipelines.core.errors import ConflictError, NotFoundError
from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS
from synth_pipelines.core.storage.database import IDS_PER_QUERY, FactoryDatabase
from synth_pipelines.core.storage.models import DatasetRequest, Face


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
    with db.session(read_only=True) as session:
        request = _find(session, request_id)
    if request is None:
        raise NotFoundError(f"dataset request {request_id!r} does not exist")
    return request


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
        request.ready_seconds = (now - aware(request.created_at)).total_seconds()
        request.lease_until = None
        request.error = request.reason = None
        session.flush()
        session.expunge(request)
        return code, request


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


def retired_requests(db: FactoryDatabase, ids: Iterable[str], before: datetime) -> set[str]:
    """Those of `ids` whose request was delivered and then expired (link and archive gone) no
    later than `before`: nothing can happen to them again, so retention drops their partitions.
    Failed and backordered requests wait for a retry and stay."""
    return db.ids_among(
        DatasetRequest, ids, DatasetRequest.status == "expired", DatasetRequest.expires_at <= before
    )


def requests_in(
    db: FactoryDatabase, statuses: tuple[str, ...], limit: int | None = None
) -> list[DatasetRequest]:
    """Requests in any of `statuses`, oldest first, at most `limit` (a sensor's query)."""
    return db.in_status(DatasetRequest, statuses, limit)


@dataclass(frozen=True)
class Queued:
    """A request's place in the request sensor's queue: what it reads of a row, not the row."""

    id: str
    status: str
    attempts: int
    created_at: datetime

    @property
    def position(self) -> tuple[datetime, str]:
        """Oldest first; the id orders requests made in the same microsecond."""
        return (self.created_at, self.id)


_QUEUED = (
    DatasetRequest.id,
    DatasetRequest.status,
    DatasetRequest.attempts,
    DatasetRequest.created_at,
)


def _queued(rows) -> list[Queued]:
    return [Queued(id, status, attempts, aware(created)) for id, status, attempts, created in rows]


def _new_after(after: tuple[datetime, str] | None):
    """New pending requests (no attempt started) after position `after`: a range of the
    (status, attempts, created_at, id) index."""
    where = [DatasetRequest.status == "pending", DatasetRequest.attempts == 0]
    if after is not None:
        where.append(tuple_(DatasetRequest.created_at, DatasetRequest.id) > tuple(after))
    return where


def new_requests_query(after: tuple[datetime, str] | None, limit: int):
    """The query of `new_requests_after` (a benchmark shows its plan)."""
    return (
        select(*_QUEUED)
        .where(*_new_after(after))
        .order_by(DatasetRequest.created_at, DatasetRequest.id)
        .limit(limit)
    )


def new_requests_after(
    db: FactoryDatabase, after: tuple[datetime, str] | None, limit: int
) -> list[Queued]:
    """The oldest `limit` new pending requests after position `after` (None: from the start)."""
    with db.session(read_only=True) as session:
        return _queued(session.execute(new_requests_query(after, limit)))


def count_new_after(db: FactoryDatabase, after: tuple[datetime, str] | None) -> int:
    """How many new pending requests wait after position `after`."""
    with db.session(read_only=True) as session:
        return session.scalar(select(func.count()).where(*_new_after(after)))


def retried_pending(db: FactoryDatabase, limit: int) -> list[Queued]:
    """The oldest `limit` pending requests that already had an attempt (a failed one retried,
    or one whose run has just started): few, whatever the backlog of new ones."""
    with db.session(read_only=True) as session:
        query = (
            select(*_QUEUED)
            .where(DatasetRequest.status == "pending", DatasetRequest.attempts > 0)
            .order_by(DatasetRequest.created_at, DatasetRequest.id)
            .limit(limit)
        )
        return _queued(session.execute(query))


def queue_states(db: FactoryDatabase, ids: Iterable[str]) -> dict[str, Queued]:
    """Where each of `ids` stands now (an id with no row is left out), asked in chunks."""
    ids = sorted(set(ids))
    found: dict[str, Queued] = {}
    with db.session(read_only=True) as session:
        for start in range(0, len(ids), IDS_PER_QUERY):
            chunk = ids[start : start + IDS_PER_QUERY]
            rows = session.execute(select(*_QUEUED).where(DatasetRequest.id.in_(chunk)))
            found.update((queued.id, queued) for queued in _queued(rows))
    return found


def backordered_demand(db: FactoryDatabase) -> dict[str, int]:
    """Faces per bucket that backordered exclusive requests are waiting for."""
    demand = dict.fromkeys(ALL_BUCKET_KEYS, 0)
    for request in requests_in(db, ("backordered",)):
        spec = request_spec(request)
        if spec.exclusive:
            for key, count in spec.buckets.items():
                demand[key] += count
    return demand


def request_counts(db: FactoryDatabase) -> dict[str, int]:
    with db.session() as session:
        rows = session.execute(
            select(DatasetRequest.status, func.count()).group_by(DatasetRequest.status)
        )
        return {status: count for status, count in rows}
