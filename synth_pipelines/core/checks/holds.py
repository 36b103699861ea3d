"""Delivery holds: failed error-severity checks recorded in the factory database, and the
buckets they pause until a later run of the same check passes, or a person lifts the hold. A
check is its asset and its name (names are unique per asset only: `id__not_null` is on two
assets).

Every hold placed and every hold lifted is written to the audit log in the same transaction
(`check_hold.placed`, `check_hold.lifted`), with who did it: the run whose check failed or
passed, or the person who lifted it and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.errors import InvalidInputError, NotFoundError
from synth_pipelines.core.security import audit
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


def _hold(row: CheckFailure) -> Hold:
    return Hold(row.check_name, row.asset, tuple(row.buckets or ()), row.description, row.failed_at)


def _is_open():
    return CheckFailure.resolved_at.is_(None)


def _open_failures(session, asset: str | None, check_name: str) -> list[CheckFailure]:
    query = select(CheckFailure).where(CheckFailure.check_name == check_name, _is_open())
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
        audit.append(
            session,
            f"run:{run_id}",
            "check_hold.placed",
            target=f"{asset}:{check_name}",
            details={"buckets": sorted(set(buckets))},
        )
        return True


def _lift(session, failures: list[CheckFailure], actor: str, reason: str) -> None:
    for failure in failures:
        failure.resolved_at, failure.resolved_by_run = utcnow(), actor[:64]
        audit.append(
            session,
            actor,
            "check_hold.lifted",
            target=f"{failure.asset}:{failure.check_name}",
            details={"buckets": failure.buckets, "reason": reason},
        )


def resolve_failure(db: FactoryDatabase, asset: str | None, check_name: str, run_id: str) -> bool:
    """Close the open hold of `check_name` on `asset` (it passed in `run_id`; None: on any
    asset, for a lift requested before holds named their asset); False when none was open."""
    with db.session(locking=True) as session:
        current = _open_failures(session, asset, check_name)
        _lift(session, current, f"run:{run_id}", "the check passed again")
        return bool(current)


def lift_hold(db: FactoryDatabase, check: str, *, actor: str, reason: str) -> Hold:
    """A person lifts the open hold of `check` (`asset:name`, or a name only one open hold has)
    because its failure was judged harmless or fixed outside the factory, and says why; the lift
    is audited under `actor`. A later failure of the check holds again."""
    if not actor.strip():
        raise InvalidInputError("say who lifts the hold (--by NAME)")
    if not reason.strip():
        raise InvalidInputError("say why the hold is lifted (--reason TEXT): it is audited")
    asset, _, name = check.rpartition(":")
    with db.session(locking=True) as session:
        current = _open_failures(session, asset or None, name)
        held = sorted(
            {
                f"{row.asset}:{row.check_name}"
                for row in session.scalars(select(CheckFailure).where(_is_open()))
            }
        )
        if not current:
            raise NotFoundError(
                f"no open hold for check {check!r}; open holds: {', '.join(held) or 'none'}"
            )
        if len({row.asset for row in current}) > 1:
            raise InvalidInputError(
                f"{check!r} holds on several assets; name one as asset:check: "
                + ", ".join(h for h in held if h.endswith(f":{name}"))
            )
        lifted = _hold(current[0])
        _lift(session, current, f"person:{actor.strip()}", reason.strip())
        return lifted


def open_holds(db: FactoryDatabase) -> list[Hold]:
    """Unresolved failures, oldest first."""
    with db.session() as session:
        rows = session.scalars(
            select(CheckFailure).where(_is_open()).order_by(CheckFailure.failed_at, CheckFailure.id)
        ).all()
        return [_hold(row) for row in rows]


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
