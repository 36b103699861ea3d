"""Serving with review-and-approve: drafts generated from the newest adapter that passed its
checks, stored encrypted in `pending_review`; only approved drafts are released as messages."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import select

from synth_pipelines.core.clock import iso, utcnow
from synth_pipelines.core.errors import ConflictError, FieldError, NotFoundError
from synth_pipelines.core.persona.adapter_store import AdapterCache
from synth_pipelines.core.persona.personas import data_key, load_persona, require_consent
from synth_pipelines.core.security import audit
from synth_pipelines.core.security.accounts import Principal
from synth_pipelines.core.security.crypto import KeyWrapper, decrypt, encrypt
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import Persona, PersonaAdapter, PersonaDraft
from synth_pipelines.core.storage.object_store import ObjectStore

MAX_PROMPT_CHARS = 2000


def adapter_view(row: PersonaAdapter) -> dict[str, Any]:
    """A registry row as the API and the CLI show it."""
    return {
        "id": row.id,
        "version": row.version,
        "corpus_sha256": row.corpus_sha256,
        "consent_id": row.consent_id,
        "base_model": row.base_model,
        "method": row.method,
        "hyperparameters": row.hyperparameters,
        "metrics": row.metrics,
        "servable": bool(row.metrics.get("checks_passed")),
        "run_id": row.run_id,
        "created_at": iso(row.created_at),
    }


def draft_view(draft: PersonaDraft) -> dict[str, Any]:
    return {
        "id": draft.id,
        "persona_id": draft.persona_id,
        "adapter_id": draft.adapter_id,
        "status": draft.status,
        "created_by": draft.created_by,
        "created_at": iso(draft.created_at),
        "reviewed_by": draft.reviewed_by,
        "reviewed_at": iso(draft.reviewed_at),
    }


def _draft_context(draft_id: str, part: str) -> str:
    return f"draft/{draft_id}/{part}"


def servable_adapter(session, persona_id: str) -> PersonaAdapter:
    """The newest adapter version whose blocking checks passed; 409 if there is none."""
    rows = session.scalars(
        select(PersonaAdapter)
        .where(PersonaAdapter.persona_id == persona_id)
        .order_by(PersonaAdapter.version.desc())
    ).all()
    for row in rows:
        if row.metrics.get("checks_passed"):
            return row
    raise ConflictError(
        f"persona {persona_id} has no adapter that passed its checks yet"
        + (f" ({len(rows)} trained, none passed)" if rows else ": upload a source and train one")
    )


def generate_draft(
    db: FactoryDatabase,
    store: ObjectStore,
    keys: KeyWrapper,
    principal: Principal,
    persona_id: str,
    prompt: str,
    *,
    base_model: Path,
    models: AdapterCache,
    max_new_tokens: int = 40,
    seed: int | None = None,
) -> tuple[PersonaDraft, str]:
    """Generate a reply to `prompt` in the persona's style; stored encrypted, pending review."""
    if not prompt.strip():
        raise FieldError("prompt", "prompt is empty")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise FieldError(
            "prompt", f"prompt is {len(prompt)} characters; at most {MAX_PROMPT_CHARS}"
        )
    with db.session() as session:
        persona = load_persona(session, principal, persona_id)
        require_consent(session, persona_id, "generation")
        adapter = servable_adapter(session, persona_id)
        key = data_key(persona, keys)
    from synth_pipelines.core.persona.evaluation import generate_replies  # torch: after checks

    model, tokenizer = models.get(
        adapter.id, persona_id, store, key, adapter.object_key, base_model
    )
    seed = seed if seed is not None else secrets.randbits(31)
    [[text]] = generate_replies(
        model,
        tokenizer,
        [[("them", prompt.strip())]],
        n=1,
        max_new_tokens=max_new_tokens,
        seed=seed,
    )
    with db.session(locking=True) as session:
        require_consent(session, persona_id, "generation")  # not revoked meanwhile
        draft = PersonaDraft(
            persona_id=persona_id,
            adapter_id=adapter.id,
            status="pending_review",
            prompt_ct=b"",
            text_ct=b"",
            created_by=principal.user,
        )
        session.add(draft)
        session.flush()
        draft.prompt_ct = encrypt(key, prompt.encode(), _draft_context(draft.id, "prompt"))
        draft.text_ct = encrypt(key, text.encode(), _draft_context(draft.id, "text"))
        audit.append(
            session,
            principal.actor,
            "draft.generated",
            persona_id=persona_id,
            target=draft.id,
            details={"adapter_id": adapter.id, "version": adapter.version, "seed": seed},
        )
    return draft, text


def _load_draft(session, principal: Principal, draft_id: str) -> tuple[PersonaDraft, Persona]:
    """The draft and its persona; 404 to anyone who may not see the persona."""
    draft = session.get(PersonaDraft, draft_id)
    if draft is None:
        raise NotFoundError(f"draft {draft_id} does not exist")
    return draft, load_persona(session, principal, draft.persona_id)


def review(db: FactoryDatabase, principal: Principal, draft_id: str, decision: str) -> PersonaDraft:
    """Approve or reject a pending draft (its persona's owner or an admin); 409 if reviewed."""
    with db.session(locking=True) as session:
        draft, _ = _load_draft(session, principal, draft_id)
        if draft.status != "pending_review":
            raise ConflictError(f"draft {draft_id} was already {draft.status}")
        draft.status = decision
        draft.reviewed_by = principal.user
        draft.reviewed_at = utcnow()
        audit.append(
            session,
            principal.actor,
            f"draft.{decision}",
            persona_id=draft.persona_id,
            target=draft.id,
        )
        return draft


def _with_text(key: bytes, draft: PersonaDraft) -> dict[str, Any]:
    """The draft's view with its prompt and text, decrypted with the persona's data key."""
    return {
        **draft_view(draft),
        "prompt": decrypt(key, draft.prompt_ct, _draft_context(draft.id, "prompt")).decode(),
        "text": decrypt(key, draft.text_ct, _draft_context(draft.id, "text")).decode(),
    }


def released_message(
    db: FactoryDatabase, keys: KeyWrapper, principal: Principal, draft_id: str
) -> dict[str, Any]:
    """An approved draft's text; 409 for one pending review or rejected."""
    with db.session(locking=True) as session:
        draft, persona = _load_draft(session, principal, draft_id)
        if draft.status != "approved":
            raise ConflictError(
                f"draft {draft_id} is {draft.status}: only approved drafts are released"
            )
        view = _with_text(data_key(persona, keys), draft)
        audit.append(
            session, principal.actor, "message.read", persona_id=draft.persona_id, target=draft_id
        )
        return view


def list_drafts(
    db: FactoryDatabase,
    keys: KeyWrapper,
    principal: Principal,
    persona_id: str,
    status: str | None,
) -> list[dict[str, Any]]:
    """The persona's drafts (optionally of one status), oldest first, with their text."""
    with db.session(locking=True) as session:
        key = data_key(load_persona(session, principal, persona_id), keys)
        query = select(PersonaDraft).where(PersonaDraft.persona_id == persona_id)
        if status:
            query = query.where(PersonaDraft.status == status)
        rows = session.scalars(query.order_by(PersonaDraft.created_at, PersonaDraft.id)).all()
        views = [_with_text(key, row) for row in rows]
        audit.append(
            session,
            principal.actor,
            "drafts.read",
            persona_id=persona_id,
            details={"status": status, "count": len(views)},
        )
        return views
