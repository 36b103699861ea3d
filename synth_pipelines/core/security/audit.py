"""The audit log: append-only, hash-chained records of every access to a persona's data, and of
every delivery hold placed or lifted (core/checks/holds.py).

Each record's hash covers its content and the previous record's hash, and `audit_head` holds the
last (seq, hash), written in the same transaction. Editing a record breaks its hash; deleting one
breaks the sequence or the chain; deleting the newest ones leaves a head no record matches.
Records carry ids, counts and hashes, never the person's text, so they survive revocation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import AuditHead, AuditRecord

GENESIS = "0" * 64
# Any constant works: it names the lock that serialises appends on PostgreSQL.
_PG_AUDIT_LOCK = 804212


def _canonical_time(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def record_hash(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    persona_id: str | None,
    target: str | None,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """sha256 over the canonical JSON of a record's fields and the previous hash."""
    body = json.dumps(
        [seq, _canonical_time(at), actor, action, persona_id, target, details, prev_hash],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def append(
    session: Session,
    actor: str,
    action: str,
    *,
    persona_id: str | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append a record inside `session`'s transaction: it commits with the action it records."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(_pg_lock()))
    head = session.get(AuditHead, 1)
    prev_seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS)
    # A JSON round trip now, so the hash covers exactly what the database will hand back.
    details = json.loads(json.dumps(details or {}, default=str))
    at = datetime.now(UTC)
    seq = prev_seq + 1
    digest = record_hash(seq, at, actor, action, persona_id, target, details, prev_hash)
    record = AuditRecord(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        persona_id=persona_id,
        target=target,
        details=details,
        prev_hash=prev_hash,
        hash=digest,
    )
    session.add(record)
    if head is None:
        session.add(AuditHead(id=1, seq=seq, hash=digest))
    else:
        head.seq, head.hash = seq, digest
    session.flush()
    return record


def _pg_lock() -> Any:
    from sqlalchemy import func

    return func.pg_advisory_xact_lock(_PG_AUDIT_LOCK)


def log(db: FactoryDatabase, actor: str, action: str, **fields: Any) -> AuditRecord:
    """Append one record in its own transaction (for actions with no other write)."""
    with db.session(locking=True) as session:
        return append(session, actor, action, **fields)


@dataclass
class Verification:
    """What `verify` found: the number of records, the head, and each problem by sequence."""

    records: int = 0
    head_hash: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(db: FactoryDatabase, batch: int = 5000) -> Verification:
    """Recompute the whole chain; every edited, inserted or deleted record is a problem."""
    result = Verification()
    expected_seq, prev_hash = 1, GENESIS
    with db.session() as session:
        head = session.get(AuditHead, 1)
        query = select(AuditRecord).order_by(AuditRecord.seq).execution_options(yield_per=batch)
        for record in session.scalars(query):
            if record.seq != expected_seq:
                result.problems.append(
                    f"record {expected_seq}"
                    + (f"-{record.seq - 1}" if record.seq - 1 > expected_seq else "")
                    + " missing: deleted"
                    if record.seq > expected_seq
                    else f"record {record.seq} out of sequence"
                )
            if record.prev_hash != prev_hash:
                result.problems.append(
                    f"record {record.seq}: does not chain to the record before it"
                )
            digest = record_hash(
                record.seq,
                record.at,
                record.actor,
                record.action,
                record.persona_id,
                record.target,
                record.details,
                record.prev_hash,
            )
            if digest != record.hash:
                result.problems.append(
                    f"record {record.seq} ({record.action}): content does not match its hash: "
                    "edited"
                )
            result.records += 1
            expected_seq, prev_hash = record.seq + 1, record.hash
        result.head_hash = prev_hash
        if head is None:
            if result.records:
                result.problems.append("the audit head is missing")
        elif (head.seq, head.hash) != (expected_seq - 1, prev_hash):
            result.problems.append(
                f"the head names record {head.seq} but the log ends at record "
                f"{expected_seq - 1}: records were deleted from the end, or the head was edited"
            )
    return result
