"""Uploading an export: consent check, parse (all or nothing), encrypt, store, record, audit."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select

from synth_pipelines.core.errors import FieldError
from synth_pipelines.core.persona.messages import EXPORT_FORMATS, ExportFormatError, ParsedExport
from synth_pipelines.core.persona.parsers import parse_export
from synth_pipelines.core.persona.personas import data_key, load_persona, require_consent
from synth_pipelines.core.security import audit
from synth_pipelines.core.security.accounts import Principal
from synth_pipelines.core.security.crypto import KeyWrapper, decrypt, encrypt
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import Persona, PersonaSource, new_id
from synth_pipelines.core.storage.object_store import ObjectStore


def persona_prefix(persona_id: str) -> str:
    """Every object of a persona lives under this prefix: revocation deletes it whole."""
    return f"personas/{persona_id}/"


def source_context(persona_id: str, source_id: str) -> str:
    return f"persona/{persona_id}/source/{source_id}"


class ExportError(FieldError):
    """An export that failed to parse: 422 naming the line."""


def add_source(
    db: FactoryDatabase,
    store: ObjectStore,
    keys: KeyWrapper,
    principal: Principal,
    persona_id: str,
    fmt: str,
    data: bytes,
    max_bytes: int,
) -> PersonaSource:
    """Parse `data` as a `fmt` export, encrypt it under the persona's key and store it.

    Nothing is stored unless the consent covers `fmt`, the whole file parses and it holds at
    least one message of the persona's own. The ciphertext is written before the row, and
    removed again if the row cannot be written: no half-kept upload.
    """
    if fmt not in EXPORT_FORMATS:
        raise FieldError("format", f"format {fmt!r} is not one of: {', '.join(EXPORT_FORMATS)}")
    if not data:
        raise FieldError("file", "the uploaded file is empty")
    if len(data) > max_bytes:
        raise FieldError(
            "file",
            f"the upload is {len(data)} bytes; the limit is {max_bytes} "
            "(SYNTH_PERSONA_MAX_UPLOAD_MB)",
        )
    with db.session() as session:
        persona = load_persona(session, principal, persona_id)
        require_consent(session, persona_id, "training", source=fmt)
        self_ids = list(persona.self_ids)
        key = data_key(persona, keys)
    parsed = parse_upload(data, fmt, self_ids)
    mine = sum(m.from_persona for m in parsed.messages)
    if not mine:
        raise FieldError(
            "self_ids",
            f"none of the {len(parsed.messages)} messages in this export is from the persona: "
            f"no sender matches self_ids ({', '.join(self_ids)})",
        )
    source_id = new_id()
    key_name = f"{persona_prefix(persona_id)}sources/{source_id}.enc"
    store.put_bytes(key_name, encrypt(key, data, source_context(persona_id, source_id)))
    try:
        with db.session(locking=True) as session:
            # Consent may have been revoked while we parsed: check again where it counts.
            require_consent(session, persona_id, "training", source=fmt)
            source = PersonaSource(
                id=source_id,
                persona_id=persona_id,
                format=fmt,
                object_key=key_name,
                size_bytes=len(data),
                messages=len(parsed.messages),
                persona_messages=mine,
                uploaded_by=principal.user,
            )
            session.add(source)
            audit.append(
                session,
                principal.actor,
                "source.uploaded",
                persona_id=persona_id,
                target=source_id,
                details={
                    "format": fmt,
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "messages": len(parsed.messages),
                    "persona_messages": mine,
                },
            )
            return source
    except BaseException:
        store.delete(key_name)
        raise


def parse_upload(data: bytes, fmt: str, self_ids: list[str]) -> ParsedExport:
    """`parse_export` with its format errors as 422s naming the line."""
    try:
        return parse_export(data, fmt, self_ids)
    except ExportFormatError as exc:
        raise ExportError("file", f"{fmt} export: {exc}") from None


def personas_to_train(db: FactoryDatabase) -> tuple[dict[str, int], set[str]]:
    """What persona_source_sensor acts on: each active persona's upload count (its "attempt":
    one run per upload), by id, and the ids of revoked personas."""
    with db.session() as session:
        uploads = dict(
            session.execute(
                select(PersonaSource.persona_id, func.count())
                .join(Persona, Persona.id == PersonaSource.persona_id)
                .where(Persona.status == "active")
                .group_by(PersonaSource.persona_id)
            ).all()
        )
        revoked = set(session.scalars(select(Persona.id).where(Persona.status == "revoked")))
    return dict(sorted(uploads.items())), revoked


def retired_personas(db: FactoryDatabase, ids: Iterable[str], before: datetime) -> set[str]:
    """Those of `ids` whose persona was revoked, whenever (`before` does not apply: a person
    who withdrew consent leaves no partition behind; persona_source_sensor removes it at once,
    retention catches any it missed)."""
    return db.ids_among(Persona, ids, Persona.status == "revoked")


def list_sources(db: FactoryDatabase, persona_id: str) -> list[PersonaSource]:
    with db.session() as session:
        return list(
            session.scalars(
                select(PersonaSource)
                .where(PersonaSource.persona_id == persona_id)
                .order_by(PersonaSource.uploaded_at, PersonaSource.id)
            )
        )


def read_source(store: ObjectStore, key: bytes, source: PersonaSource) -> bytes:
    """The decrypted upload; IntegrityError if its ciphertext was altered."""
    blob = store.get_bytes(source.object_key)
    return decrypt(key, blob, source_context(source.persona_id, source.id))
