"""The factory's register of image sets: what the API and `synth images` write (a set to build
from a real source), what the image set sensor reads (the sets waiting for a run) and what the
assets record as a set moves through profile → generate → validate → export.

A set is `pending` until a run takes it (`running`, with its `stage`), then `ready` or `failed`
(with the error); `retry` puts a failed set back in the queue as a new attempt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.errors import ConflictError, InvalidInputError, NotFoundError
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import ImageSet

BACKENDS = ("simulation", "diffusion", "gan")
FORMATS = ("jsonl", "parquet", "webdataset", "imagefolder", "coco")
STAGES = ("profile", "generate", "validate", "export")
MAX_COUNT = 10_000_000
_S3 = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/.*)?$")


def source_kind(source: str) -> str:
    """The kind of a source spec — `s3`, `zip`, `parquet`, `imagefolder` (a folder with a
    metadata.jsonl) or `folder` — checked as far as it can be without reading the images: a
    local path must exist; an S3 spec must name a valid bucket."""
    source = (source or "").strip()
    if not source:
        raise InvalidInputError("source is empty: give a folder, a .zip, a .parquet or s3://…")
    if source.startswith("s3://"):
        if not _S3.match(source):
            raise InvalidInputError(f"source {source!r} is not s3://<bucket>[/<prefix>]")
        return "s3"
    path = Path(source).expanduser()
    if not path.exists():
        raise InvalidInputError(f"source {source}: no such file or folder")
    if path.is_dir():
        return "imagefolder" if (path / "metadata.jsonl").is_file() else "folder"
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return "zip"
    if suffix == ".parquet":
        return "parquet"
    raise InvalidInputError(
        f"source {source}: not a folder, a .zip, a .parquet file or an s3:// prefix"
    )


def _params(
    backend: str, count: int, seed: int, formats: Sequence[str], truncation: float
) -> dict[str, Any]:
    if backend not in BACKENDS:
        raise InvalidInputError(f"backend {backend!r} is not one of: {', '.join(BACKENDS)}")
    if not 1 <= count <= MAX_COUNT:
        raise InvalidInputError(f"count must be 1 to {MAX_COUNT:,}, got {count}")
    if seed < 0:
        raise InvalidInputError(f"seed must be >= 0, got {seed}")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InvalidInputError(
            f"formats {list(formats)!r}: each one of {', '.join(FORMATS)} (at least one)"
        )
    if not 0.0 <= truncation <= 2.0:
        raise InvalidInputError(f"truncation must be 0 to 2, got {truncation}")
    return {
        "backend": backend,
        "count": count,
        "seed": seed,
        "formats": list(dict.fromkeys(formats)),
        "truncation": truncation,
    }


def as_dict(row: ImageSet) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "owner": row.owner,
        "source": row.source,
        "source_kind": row.source_kind,
        "status": row.status,
        "stage": row.stage,
        "params": dict(row.params),
        "counts": dict(row.counts or {}),
        "checks": dict(row.checks or {}),
        "exports": dict(row.exports or {}),
        "attempts": row.attempts,
        "error": row.error,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def register_image_set(
    db: FactoryDatabase,
    source: str,
    *,
    name: str = "",
    owner: str = "",
    backend: str = "simulation",
    count: int = 100,
    seed: int = 0,
    formats: Sequence[str] = ("parquet", "imagefolder"),
    truncation: float = 0.7,
) -> dict[str, Any]:
    """A new pending image set from `source` (see `source_kind`); the sensor runs it."""
    kind = source_kind(source)
    params = _params(backend, count, seed, formats, truncation)
    name = (name or "").strip() or Path(source.rstrip("/")).name or "image-set"
    if len(name) > 128:
        raise InvalidInputError(f"name is {len(name)} characters: at most 128")
    with db.session() as session:
        row = ImageSet(
            name=name,
            owner=owner,
            source=source.strip(),
            source_kind=kind,
            params=params,
            counts={},
            checks={},
            exports={},
        )
        session.add(row)
        session.flush()
        return as_dict(row)


def _row(session: Any, set_id: str) -> ImageSet:
    row = session.get(ImageSet, set_id)
    if row is None:
        raise NotFoundError(f"image set {set_id} not found")
    return row


def get_image_set(db: FactoryDatabase, set_id: str) -> dict[str, Any]:
    with db.session(read_only=True) as session:
        return as_dict(_row(session, set_id))


def list_image_sets(db: FactoryDatabase, limit: int = 100) -> list[dict[str, Any]]:
    with db.session(read_only=True) as session:
        rows = session.scalars(
            select(ImageSet).order_by(ImageSet.created_at.desc()).limit(limit)
        ).all()
        return [as_dict(row) for row in rows]


def sets_to_run(db: FactoryDatabase) -> tuple[dict[str, int], set[str]]:
    """What the image set sensor acts on: pending sets (id → attempt, by id); none removed."""
    with db.session(read_only=True) as session:
        rows = session.execute(
            select(ImageSet.id, ImageSet.attempts).where(ImageSet.status == "pending")
        ).all()
    return {set_id: attempts for set_id, attempts in sorted(rows)}, set()


def retired_sets(db: FactoryDatabase, ids: Iterable[str], before: datetime) -> set[str]:
    """Those of `ids` whose set was ready (exported) and unchanged since no later than
    `before`: delivered, never run again (only a failed set retries), so retention drops their
    partitions; the exports stay in the store."""
    return db.ids_among(ImageSet, ids, ImageSet.status == "ready", ImageSet.updated_at <= before)


def update_image_set(db: FactoryDatabase, set_id: str, **fields: Any) -> dict[str, Any]:
    """Record a set's progress: any of status, stage, counts, checks, exports, error. `counts`,
    `checks` and `exports` are merged into what is recorded."""
    with db.session(locking=True) as session:
        row = _row(session, set_id)
        for merged in ("counts", "checks", "exports"):
            if merged in fields:
                setattr(row, merged, {**(getattr(row, merged) or {}), **fields.pop(merged)})
        for key, value in fields.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        return as_dict(row)


def retry_image_set(db: FactoryDatabase, set_id: str) -> dict[str, Any]:
    """Put a failed set back in the queue as a new attempt (409 unless it failed)."""
    with db.session(locking=True) as session:
        row = _row(session, set_id)
        if row.status != "failed":
            raise ConflictError(f"image set {set_id} is {row.status}: only a failed set retries")
        row.status, row.stage, row.error = "pending", "", None
        row.attempts += 1
        row.updated_at = utcnow()
        return as_dict(row)
