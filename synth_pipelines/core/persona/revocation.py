"""Revoking consent: everything made from the person's data is deleted, and the data key with it.

What goes: every object under the persona's prefix (uploads, corpus, datasets, adapters), the
rows of sources, adapters, drafts and consents, the persona's name, identifiers and wrapped data
key, and its local training checkpoints. What stays: the persona row as a tombstone (id, owner,
status revoked) and the audit records, which never held the person's text. The Dagster partition
is removed by persona_source_sensor, which sees the tombstone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import delete, func, select

from synth_pipelines.core.persona.personas import load_persona
from synth_pipelines.core.persona.sources import persona_prefix
from synth_pipelines.core.security import audit
from synth_pipelines.core.security.accounts import Principal
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import (
    Consent,
    Persona,
    PersonaAdapter,
    PersonaDraft,
    PersonaSource,
    utcnow,
)
from synth_pipelines.core.storage.object_store import ObjectStore


def persona_work_dir(home: Path, persona_id: str) -> Path:
    """Local scratch of a persona's training (checkpoints to resume from)."""
    return home / "work" / "personas" / persona_id


def revoke_consent(
    db: FactoryDatabase,
    store: ObjectStore,
    principal: Principal,
    persona_id: str,
    home: Path,
) -> dict[str, int]:
    """Purge persona `persona_id`; returns what was deleted, by kind. Safe to retry: a purge cut
    short leaves a revoked persona whose remains the next call deletes."""
    with db.session(locking=True) as session:
        persona = session.get(Persona, persona_id)
        if persona is None or persona.status == "active":
            persona = load_persona(session, principal, persona_id)  # 404 unless visible
            # Revoked first, in its own transaction: from here on no step may read the data.
            persona.status = "revoked"
            persona.revoked_at = utcnow()
            session.execute(
                Consent.__table__.update()
                .where(Consent.persona_id == persona_id, Consent.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            audit.append(session, principal.actor, "consent.revoked", persona_id=persona_id)
        elif not principal.may_see(persona.owner):
            load_persona(session, principal, persona_id)  # raises the 404
    return purge(db, store, principal.actor, persona_id, home)


def purge(
    db: FactoryDatabase, store: ObjectStore, actor: str, persona_id: str, home: Path
) -> dict[str, int]:
    """Delete every remain of a revoked persona (see the module docstring)."""
    keys = list(store.list_keys(persona_prefix(persona_id)))
    store.delete_many(keys)
    shutil.rmtree(persona_work_dir(home, persona_id), ignore_errors=True)
    counts = {"objects": len(keys)}
    with db.session(locking=True) as session:
        for name, model in [
            ("sources", PersonaSource),
            ("adapters", PersonaAdapter),
            ("drafts", PersonaDraft),
            ("consents", Consent),
        ]:
            counts[name] = session.scalar(
                select(func.count()).select_from(model).where(model.persona_id == persona_id)
            )
            session.execute(delete(model).where(model.persona_id == persona_id))
        persona = session.get(Persona, persona_id)
        if persona is not None:
            persona.status = "revoked"
            persona.display_name = ""
            persona.self_ids = []
            persona.wrapped_key = None
            persona.key_id = None
            persona.corpus_sha256 = None
            persona.dataset_key = None
            persona.revoked_at = persona.revoked_at or utcnow()
        audit.append(session, actor, "persona.purged", persona_id=persona_id, details=counts)
    db.scrub(("personas", "persona_sources", "persona_adapters", "persona_drafts", "consents"))
    return counts
