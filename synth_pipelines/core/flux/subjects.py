"""Subjects of Flux LoRAs: creation with consent, uploads and prepared photos encrypted under the
subject's own data key, visibility, status, and revocation.

Object layout (every object encrypted, bound to its key name):
    subjects/<id>/uploads/manifest.json.enc   upload index → original file name
    subjects/<id>/uploads/<index>.enc         the uploaded image, as sent
    subjects/<id>/photos/manifest.json.enc    prepared photos: captions, buckets, hashes
    subjects/<id>/photos/<sha256>.png.enc     a prepared (cropped, bucketed) photo
    subjects/<id>/loras/v<n>.tar.enc          a trained LoRA (diffusers safetensors)
    subjects/<id>/loras/v<n>/samples/…        validation samples
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.errors import (
    FieldError,
    GoneError,
    NotFoundError,
    PermissionDeniedError,
)
from synth_pipelines.core.security import audit
from synth_pipelines.core.security.accounts import Principal
from synth_pipelines.core.security.crypto import (
    KeyWrapper,
    decrypt,
    encrypt,
    new_data_key,
    owner_context,
)
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import FluxLora, Subject
from synth_pipelines.core.storage.object_store import ObjectStore

TRIGGER = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def subject_prefix(subject_id: str) -> str:
    return f"subjects/{subject_id}/"


def subject_context(subject_id: str, key: str | None = None) -> str:
    """The associated data binding a subject's wrapped key and ciphertexts to it."""
    return owner_context("subject", subject_id, key)


def put_encrypted(
    store: ObjectStore, data_key: bytes, subject_id: str, key: str, data: bytes
) -> None:
    store.put_bytes(key, encrypt(data_key, data, subject_context(subject_id, key)))


def get_decrypted(store: ObjectStore, data_key: bytes, subject_id: str, key: str) -> bytes:
    return decrypt(data_key, store.get_bytes(key), subject_context(subject_id, key))


def create_subject(
    db: FactoryDatabase,
    store: ObjectStore,
    keys: KeyWrapper,
    principal: Principal,
    files: list[tuple[str, bytes]],
    trigger: str,
    consent: bool,
) -> Subject:
    """A subject from uploaded photos (or zips of them), stored encrypted, `pending` until
    subject_photos prepares them. Consent must be given (403 otherwise); nothing is stored then."""
    from synth_pipelines.core.flux.photos import read_upload

    if consent is not True:
        raise PermissionDeniedError(
            "consent is required: the person in the photos must agree to a model of their "
            "likeness (send consent=true once they have)"
        )
    if not TRIGGER.match(trigger or ""):
        raise FieldError(
            "trigger", "trigger must be 1-32 letters, digits, _ or - (no spaces), e.g. 'sks_ada'"
        )
    images = read_upload(files)
    written: list[str] = []
    try:
        with db.session(locking=True) as session:
            subject = Subject(
                owner=principal.user,
                trigger=trigger,
                consent_by=principal.user,
                consent_at=utcnow(),
                uploads=len(images),
                status="pending",
                rejected=[],
            )
            session.add(subject)
            session.flush()
            sid = subject.id
            data_key = new_data_key()
            subject.wrapped_key = keys.wrap(data_key, subject_context(sid))
            subject.key_id = keys.current_key_id
            names = []
            for index, (name, data) in enumerate(images):
                key = f"{subject_prefix(sid)}uploads/{index}.enc"
                put_encrypted(store, data_key, sid, key, data)
                written.append(key)
                names.append({"index": index, "name": name, "bytes": len(data)})
            key = f"{subject_prefix(sid)}uploads/manifest.json.enc"
            put_encrypted(store, data_key, sid, key, json.dumps(names).encode())
            written.append(key)
            audit.append(
                session,
                principal.actor,
                "subject.created",
                target=sid,
                details={"photos": len(images), "consent": True},
            )
            return subject
    except BaseException:
        store.delete_many(written)  # the row was rolled back: no object without one
        raise


def load_subject(session: Session, principal: Principal | None, subject_id: str) -> Subject:
    """The subject if `principal` may see it (owner or admin; None: the pipeline); 404 for
    anyone else, 410 once revoked."""
    subject = session.get(Subject, subject_id)
    if subject is None or (principal is not None and not principal.may_see(subject.owner)):
        raise NotFoundError(f"subject {subject_id} does not exist")
    if subject.status == "revoked":
        raise GoneError(f"subject {subject_id}: consent was revoked and its photos deleted")
    return subject


def visible_subjects(session: Session, principal: Principal) -> list[Subject]:
    """The subjects `principal` may see that are not revoked (admins: everyone's), oldest
    first."""
    query = select(Subject).where(Subject.status != "revoked").order_by(Subject.created_at)
    if not principal.is_admin:
        query = query.where(Subject.owner == principal.user)
    return list(session.scalars(query))


def subject_key(subject: Subject, keys: KeyWrapper) -> bytes:
    if subject.wrapped_key is None:
        raise GoneError(f"subject {subject.id} has no data key: its data was deleted")
    return keys.unwrap(subject.wrapped_key, subject_context(subject.id))


def read_uploads(store: ObjectStore, data_key: bytes, subject_id: str) -> list[tuple[str, bytes]]:
    """The uploaded files, decrypted, with their original names."""
    prefix = f"{subject_prefix(subject_id)}uploads/"
    names = json.loads(get_decrypted(store, data_key, subject_id, f"{prefix}manifest.json.enc"))
    return [
        (item["name"], get_decrypted(store, data_key, subject_id, f"{prefix}{item['index']}.enc"))
        for item in names
    ]


def read_upload_named(store: ObjectStore, data_key: bytes, subject_id: str, name: str) -> bytes:
    """One uploaded file, decrypted, by the name the upload gave it (a rejected photo's `name`);
    NotFoundError when no upload has that name."""
    prefix = f"{subject_prefix(subject_id)}uploads/"
    names = json.loads(get_decrypted(store, data_key, subject_id, f"{prefix}manifest.json.enc"))
    for item in names:
        if item["name"] == name:
            return get_decrypted(store, data_key, subject_id, f"{prefix}{item['index']}.enc")
    raise NotFoundError(f"subject {subject_id} has no upload named {name!r}")


def subjects_to_train(db: FactoryDatabase) -> tuple[dict[str, int], set[str]]:
    """What subject_sensor acts on: pending subjects (id → attempt, by id) and revoked ids."""
    with db.session() as session:
        rows = session.execute(select(Subject.id, Subject.status, Subject.attempts)).all()
    pending = {sid: attempts for sid, status, attempts in sorted(rows) if status == "pending"}
    return pending, {sid for sid, status, _ in rows if status == "revoked"}


def retired_subjects(db: FactoryDatabase, ids: Iterable[str], before: datetime) -> set[str]:
    """Those of `ids` whose subject was revoked, whenever (`before` does not apply: consent
    withdrawn leaves no partition; subject_sensor removes it at once, retention catches any it
    missed). A ready subject stays: its LoRA still serves generations."""
    return db.ids_among(Subject, ids, Subject.status == "revoked")


def set_status(db: FactoryDatabase, subject_id: str, status: str, **fields: Any) -> None:
    """Move a subject on (preparing, training, ready, failed); 410 if it was revoked."""
    with db.session(locking=True) as session:
        subject = session.get(Subject, subject_id)
        if subject is None or subject.status == "revoked":
            raise GoneError(f"subject {subject_id}: consent was revoked and its photos deleted")
        subject.status = status
        for name, value in fields.items():
            setattr(subject, name, value)


def next_lora_version(db: FactoryDatabase, subject_id: str) -> int:
    with db.session() as session:
        current = session.scalar(
            select(func.max(FluxLora.version)).where(FluxLora.subject_id == subject_id)
        )
    return (current or 0) + 1


def subject_work_dir(home: Path, subject_id: str) -> Path:
    """Local scratch of a subject's training (checkpoints to resume from)."""
    return home / "work" / "subjects" / subject_id


def revoke_subject(
    db: FactoryDatabase, store: ObjectStore, principal: Principal, subject_id: str, home: Path
) -> dict[str, int]:
    """Delete the subject's photos, LoRAs, samples, registry rows and data key; a tombstone and
    the audit records stay. Safe to retry."""
    with db.session(locking=True) as session:
        subject = session.get(Subject, subject_id)
        if subject is None or subject.status != "revoked":
            subject = load_subject(session, principal, subject_id)
        elif not principal.may_see(subject.owner):
            raise NotFoundError(f"subject {subject_id} does not exist")
        subject.status = "revoked"
        subject.revoked_at = subject.revoked_at or utcnow()
        subject.wrapped_key = None
        subject.key_id = None
        subject.trigger = ""
        subject.rejected = []
        keys = list(store.list_keys(subject_prefix(subject_id)))
        loras = session.scalar(
            select(func.count()).select_from(FluxLora).where(FluxLora.subject_id == subject_id)
        )
        session.execute(delete(FluxLora).where(FluxLora.subject_id == subject_id))
        counts = {"objects": len(keys), "loras": loras or 0}
        audit.append(session, principal.actor, "subject.revoked", target=subject_id, details=counts)
    store.delete_many(keys)
    shutil.rmtree(subject_work_dir(home, subject_id), ignore_errors=True)
    db.scrub(("subjects", "flux_loras"))
    return counts
