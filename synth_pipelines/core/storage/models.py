"""SQLAlchemy models of the factory database: the contract between API, sensors and assets.

Schema changes go through an Alembic migration in `migrations/versions/`; a test checks that the
models and the migrated schema agree.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from synth_pipelines.core.clock import utcnow

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
        # Reservations read one status of one bucket oldest first: a range of this index.
        Index("ix_faces_bucket_status", "gender", "age_group", "status", "created_at", "id"),
        Index("ix_faces_batch_id", "batch_id"),
        Index("ix_faces_request_id", "request_id"),
    )

    @property
    def bucket_key(self) -> str:
        return f"{self.gender}/{self.age_group}"


class FacePhashBand(Base):
    """One band of a face's perceptual hash: the index that finds, among all stored faces, the
    few that may lie within the near-duplicate distance of a new one (see
    `core/faces/inventory.py: phash_band_keys`). Written in the face's own insert transaction."""

    __tablename__ = "face_phash_bands"

    # band number << 13 | the band's bits
    band_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    face_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True
    )


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
    # completed_at - created_at, set when the request turns ready: the dashboard's percentiles
    # and download total read its index (a request is downloaded only once it is ready).
    ready_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (
        # A sensor reads the oldest requests of a status (backorders) as a range of the first,
        # and new pending ones (no attempt yet) after its cursor's mark as a range of the second.
        Index("ix_dataset_requests_status", "status", "created_at", "id"),
        Index("ix_dataset_requests_queue", "status", "attempts", "created_at", "id"),
        Index("ix_dataset_requests_ready_seconds", "ready_seconds", "downloads"),
    )


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
    # A job fitted to a real sample (drafter "fitted"): who uploaded it; the sample's encrypted
    # train and holdout objects, file name, row counts and whether it was deleted; the job's
    # data key wrapped by the master key; and the quality and privacy reports of its last run.
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    sample: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    reports: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # A job fitted to several samples joined by keys: the fitted tables (each table's schema and
    # model, the relations, parents before children: multitable.FittedTables, no raw rows). Its
    # `schema_json` is the first root table's; `sample` holds every table's parts.
    tables: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_tabular_jobs_status", "status", "created_at"),)


class CheckFailure(Base):
    """A failed error-severity asset check, recorded by apply_check_holds_job (which
    check_failure_sensor requests). While unresolved, delivery from its `buckets` is paused; a
    later passing run of the check resolves it."""

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


PERSONA_STATUSES = ("active", "revoked")
DRAFT_STATUSES = ("pending_review", "approved", "rejected")
API_KEY_ROLES = ("owner", "admin")


class ApiKey(Base):
    """An API key of one user. Only a hash of the secret is stored; `role` admin sees everything,
    owner only the personas it created."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))  # API_KEY_ROLES
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Persona(Base):
    """A consenting person whose writing style becomes an adapter. After revocation only this
    tombstone stays: no name, no identifiers, no key."""

    __tablename__ = "personas"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="active")  # PERSONA_STATUSES
    display_name: Mapped[str] = mapped_column(String(256), default="")
    # How the persona appears in exports: sender names, phone numbers, email addresses.
    self_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The persona's data key, wrapped by the master key (envelope encryption).
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The newest persona_corpus and persona_dataset: what the next asset downstream reads.
    corpus_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dataset_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Consent(Base):
    """The consent a persona gave: which sources and uses, the text's hash, its validity."""

    __tablename__ = "consents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    persona_id: Mapped[str] = mapped_column(String(32))
    sources: Mapped[list[str]] = mapped_column(JSON)  # export formats allowed
    uses: Mapped[list[str]] = mapped_column(JSON)  # CONSENT_USES
    text_sha256: Mapped[str] = mapped_column(String(64))
    granted_by: Mapped[str] = mapped_column(String(256))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_consents_persona_id", "persona_id"),)


class PersonaSource(Base):
    """An uploaded export, stored encrypted; counts from its parse (no text)."""

    __tablename__ = "persona_sources"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    persona_id: Mapped[str] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(16))
    object_key: Mapped[str] = mapped_column(String(512))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    messages: Mapped[int] = mapped_column(Integer)
    persona_messages: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(128))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_persona_sources_persona_id", "persona_id", "uploaded_at"),)


class PersonaAdapter(Base):
    """The registry: one trained adapter version and everything it was made from."""

    __tablename__ = "persona_adapters"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    persona_id: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    corpus_sha256: Mapped[str] = mapped_column(String(64))
    consent_id: Mapped[str] = mapped_column(String(32))
    base_model: Mapped[str] = mapped_column(String(512))
    method: Mapped[str] = mapped_column(String(16))
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    object_key: Mapped[str] = mapped_column(String(512))
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("persona_id", "version"),)


class PersonaDraft(Base):
    """A generated message waiting for review; prompt and text encrypted under the persona key."""

    __tablename__ = "persona_drafts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    persona_id: Mapped[str] = mapped_column(String(32))
    adapter_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending_review")  # DRAFT_STATUSES
    prompt_ct: Mapped[bytes] = mapped_column(LargeBinary)
    text_ct: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reviewed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_persona_drafts_persona_id", "persona_id", "status"),)


class AuditRecord(Base):
    """One append-only audit record; `hash` chains it to the record before it (`prev_hash`).
    Details carry ids, counts and hashes, never the person's text."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    persona_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    target: Mapped[str | None] = mapped_column(String(128), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_audit_log_persona_id", "persona_id"),)


class AuditHead(Base):
    """The chain's last sequence number and hash, written with every append: deleting records
    from the end of the log leaves a head that no record matches."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


SUBJECT_STATUSES = ("pending", "preparing", "training", "ready", "failed", "revoked")


class Subject(Base):
    """A person whose likeness becomes a Flux LoRA: their consent, trigger word, data key and
    progress. Photos live encrypted in the object store; after revocation only a tombstone."""

    __tablename__ = "subjects"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # SUBJECT_STATUSES
    trigger: Mapped[str] = mapped_column(String(64), default="")
    consent_by: Mapped[str] = mapped_column(String(256), default="")
    consent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    uploads: Mapped[int] = mapped_column(Integer, default=0)
    # Set by subject_photos: accepted count and each rejected file with its reason.
    photos: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_subjects_status", "status", "created_at"),)


class FluxLora(Base):
    """The registry of a subject's trained LoRAs: base model, settings, metrics, where it is."""

    __tablename__ = "flux_loras"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    subject_id: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    base_model: Mapped[str] = mapped_column(String(512))
    photos_sha256: Mapped[str] = mapped_column(String(64))
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    object_key: Mapped[str] = mapped_column(String(512))
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("subject_id", "version"),)


IMAGE_SET_STATUSES = ("pending", "running", "ready", "failed")


class ImageSet(Base):
    """An image set: a real source to profile, the synthetic set generated to its profile, its
    validation and exports. `stage` names the step a running set is in."""

    __tablename__ = "image_sets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128))
    owner: Mapped[str] = mapped_column(String(128), default="")
    source: Mapped[str] = mapped_column(Text)  # a folder, zip, s3://bucket/prefix, Parquet …
    source_kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # IMAGE_SET_STATUSES
    stage: Mapped[str] = mapped_column(String(16), default="")  # profile|generate|validate|export
    # backend, count, seed, formats, truncation: what the synthetic set is to be.
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # images, ok, failed, …
    checks: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # check name → summary
    exports: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # format → prefix
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_image_sets_status", "status", "created_at"),)
