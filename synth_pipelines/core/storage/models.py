"""SQLAlchemy models of the factory database: the contract between API, sensors and assets.

Schema changes go through an Alembic migration in `migrations/versions/`; a test checks that the
models and the migrated schema agree.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# `shared` faces went out in non-exclusive datasets: other non-exclusive requests may reuse them,
# exclusive ones never receive them.
FACE_STATUSES = ("available", "reserved", "delivered", "shared")
REQUEST_STATUSES = ("pending", "packaging", "backordered", "ready", "failed", "expired")
TABULAR_JOB_STATUSES = ("draft", "confirmed", "running", "completed", "failed")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Face(Base):
    """One stored face image: its object, its labels (intended, classified, used) and status."""

    __tablename__ = "faces"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # The label used for the inventory: which bucket this face serves.
    gender: Mapped[str] = mapped_column(String(16))
    age_group: Mapped[str] = mapped_column(String(16))
    label_source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="available")
    object_key: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    phash: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    # Provenance: which generator made it, with which per-face seed, in which batch.
    generator: Mapped[str] = mapped_column(String(128))
    seed: Mapped[int] = mapped_column(BigInteger)
    batch_id: Mapped[str] = mapped_column(String(128))
    intended_gender: Mapped[str] = mapped_column(String(16))
    intended_age_group: Mapped[str] = mapped_column(String(16))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The classifier's reading; label fields are null when no face was detected.
    classifier: Mapped[str] = mapped_column(String(64))
    face_detected: Mapped[bool] = mapped_column(Boolean)
    predicted_gender: Mapped[str | None] = mapped_column(String(16), nullable=True)
    gender_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    predicted_age: Mapped[float | None] = mapped_column(Float, nullable=True)
    predicted_age_group: Mapped[str | None] = mapped_column(String(16), nullable=True)
    age_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reserved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # A reservation is a lease: past this time a killed packaging run's faces are free again.
    reserved_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        UniqueConstraint("sha256"),
        Index("ix_faces_bucket_status", "gender", "age_group", "status"),
        Index("ix_faces_batch_id", "batch_id"),
        Index("ix_faces_request_id", "request_id"),
    )

    @property
    def bucket_key(self) -> str:
        return f"{self.gender}/{self.age_group}"


class DatasetRequest(Base):
    """A request for a face dataset, from submission to an expiring download link."""

    __tablename__ = "dataset_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # {"buckets": {"female/adult": 10}, "format": "zip", "image_size": 256, "exclusive": true}
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    total: Mapped[int] = mapped_column(Integer)
    # Packaging attempts started; a retry's run key is (id, attempts).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    delivered: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    archive_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    archive_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    code_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_dataset_requests_status", "status", "created_at"),)


class TabularJob(Base):
    """A tabular job: prompt → draft schema → confirmed → generated table, with progress."""

    __tablename__ = "tabular_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    prompt: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="draft")  # TABULAR_JOB_STATUSES
    schema_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    drafter: Mapped[str] = mapped_column(String(64))  # "offline" or "llm:<model>"
    # Set at confirm: total_rows, chunk_size, max_workers, dedup_threshold, seed.
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # While running: renewed at every chunk; past it, the run is taken for dead (killed).
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    total_chunks: Mapped[int] = mapped_column(Integer, default=0)
    completed_chunks: Mapped[int] = mapped_column(Integer, default=0)
    rows_generated: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_deduplicated: Mapped[int] = mapped_column(BigInteger, default=0)
    llm_rejects: Mapped[int] = mapped_column(Integer, default=0)
    outputs: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # format → key
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_tabular_jobs_status", "status", "created_at"),)


class CheckFailure(Base):
    """A failed error-severity asset check, recorded by check_failure_sensor. While unresolved,
    delivery from its `buckets` is paused; a later passing run of the check resolves it."""

    __tablename__ = "check_failures"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    check_name: Mapped[str] = mapped_column(String(256))
    asset: Mapped[str] = mapped_column(String(256))
    buckets: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolved_by_run: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (Index("ix_check_failures_open", "resolved_at", "check_name"),)


class FaceScan(Base):
    """What the image checks measured on a stored face, kept so each face is decoded and
    embedded once: quality figures and its dlib identity embedding (128 float32)."""

    __tablename__ = "face_scans"

    face_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    decodable: Mapped[bool] = mapped_column(Boolean)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    blur: Mapped[float] = mapped_column(Float)
    brightness: Mapped[float] = mapped_column(Float)
    clipped: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    scanned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
