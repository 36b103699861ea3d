"""Delivery holds: failed error-severity checks recorded in the factory database, and the
buckets they pause until a later run of the same check passes. A check is its asset and its
name (names are unique per asset only: `id__not_null` is on two assets)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import CheckFailure


@dataclass(frozen=True)
class Hold:
    check_name: str
    asset: str
    buckets: tuple[str, ...]
    description: str
    failed_at: datetime

    @property
    def check(self) -> str:
        """The check as Dagster spells its key: `face_inventory:near_duplicates`."""
        return f"{self.asset}:{self.check_name}"


def _open_failures(session, asset: str | None, check_name: str) -> list[CheckFailure]:
    query = select(CheckFailure).where(
        CheckFailure.check_name == check_name, CheckFailure.resolved_at.is_(None)
    )
    if asset is not None:
        query = query.where(CheckFailure.asset == asset)
    return list(session.scalars(query))


def record_failure(
    db: FactoryDatabase,
    check_name: str,
    asset: str,
    buckets: list[str],
    description: str,
    run_id: str,
    failed_at: datetime | None = None,
) -> bool:
    """Record that `check_name` on `asset` failed in `run_id`; returns True when this opens a
    new hold (an open one for the same check is updated with the latest buckets and
    description)."""
    with db.session(locking=True) as session:
        current = next(iter(_open_failures(session, asset, check_name)), None)
        if current is not None:
            current.buckets, current.description = sorted(set(buckets)), description[:2000]
            current.run_id = run_id
            return False
        session.add(
            CheckFailure(
                check_name=check_name,
                asset=asset,
                buckets=sorted(set(buckets)),
                description=description[:2000],
                run_id=run_id,
                failed_at=failed_at or utcnow(),
            )
        )
        return True


def resolve_failure(db: FactoryDatabase, asset: str | None, check_name: str, run_id: str) -> bool:
    """Close the open hold of `check_name` on `asset` (it passed in `run_id`; None: on any
    asset, for a lift requested before holds named their asset); False when none was open."""
    with db.session(locking=True) as session:
        current = _open_failures(session, asset, check_name)
        for failure in current:
            failure.resolved_at, failure.resolved_by_run = utcnow(), run_id
        return bool(current)


def open_holds(db: FactoryDatabase) -> list[Hold]:
    """Unresolved failures, oldest first."""
    with db.session() as session:
        rows = session.scalars(
            select(CheckFailure)
            .where(CheckFailure.resolved_at.is_(None))
            .order_by(CheckFailure.failed_at, CheckFailure.id)
        ).all()
        return [
            Hold(r.check_name, r.asset, tuple(r.buckets or ()), r.description, r.failed_at)
            for r in rows
        ]


def paused_buckets(db: FactoryDatabase) -> dict[str, list[str]]:
    """Bucket key → the checks holding it (open failures that named it), each as
    `asset:check_name`."""
    paused: dict[str, list[str]] = {}
    for hold in open_holds(db):
        for bucket in hold.buckets:
            paused.setdefault(bucket, []).append(hold.check)
    return paused


def pause_reason(paused: dict[str, list[str]], buckets: list[str]) -> str | None:
    """Why a request for `buckets` may not be delivered now, or None when it may."""
    held = {bucket: paused[bucket] for bucket in buckets if bucket in paused}
    if not held:
        return None
    return "delivery paused by failed checks: " + "; ".join(
        f"{bucket} ({', '.join(checks)})" for bucket, checks in sorted(held.items())
    )
