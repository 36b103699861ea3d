"""Persona endpoints: consent, uploads, the adapter registry, drafts for review, revocation.

Every call needs an API key (`Authorization: Bearer sp_…`). A persona is visible to its owner
and to admins only; to anyone else it does not exist (404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from synth_pipelines.api.body_limits import BodyLimit, body_limit
from synth_pipelines.api.common import api_state
from synth_pipelines.api.schemas import ErrorBody
from synth_pipelines.core.clock import iso
from synth_pipelines.core.persona import drafts
from synth_pipelines.core.persona.messages import EXPORT_FORMATS
from synth_pipelines.core.persona.personas import (
    CONSENT_USES,
    ConsentGrant,
    active_consent,
    create_persona,
    load_persona,
)
from synth_pipelines.core.persona.revocation import revoke_consent
from synth_pipelines.core.persona.sources import add_source, list_sources
from synth_pipelines.core.security import audit
from synth_pipelines.core.security.accounts import Principal, authenticate
from synth_pipelines.core.security.crypto import KeyWrapper
from synth_pipelines.core.storage.models import Persona, PersonaAdapter

bearer = HTTPBearer(auto_error=False)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 410, 422, 503)
}


def principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Principal:
    """The caller, from their API key: 401 without a valid one."""
    return authenticate(api_state(request).db, credentials.credentials if credentials else None)


router = APIRouter(tags=["personas"], responses=ERRORS)
body_limit(
    "POST",
    "/personas/{persona_id}/sources",
    BodyLimit("file", lambda settings: settings.personas.max_upload_mb * 2**20,
              "SYNTH_PERSONA_MAX_UPLOAD_MB"),
)  # fmt: skip


def _keys(request: Request) -> KeyWrapper:
    return api_state(request).keys()


class ConsentBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    sources: list[str] = Field(description=f"export formats covered: {', '.join(EXPORT_FORMATS)}")
    uses: list[str] = Field(description=f"uses covered: {', '.join(CONSENT_USES)}")
    granted_by: str = Field(description="who granted it, and how (e.g. 'Ada Lovelace, signed')")
    text: str | None = Field(default=None, description="the consent text; only its sha256 is kept")
    text_sha256: str | None = Field(default=None, description="or the text's sha256")
    # JSON has no datetime type: these two read ISO 8601 strings (a strict field accepts none).
    granted_at: datetime | None = Field(default=None, strict=False, description="ISO 8601")
    expires_at: datetime | None = Field(
        default=None, strict=False, description="ISO 8601; default: a year after granted"
    )


class PersonaBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    display_name: str
    self_ids: list[str] = Field(
        description="how the person appears in their exports: sender names, numbers, emails"
    )
    consent: ConsentBody


class DraftBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    prompt: str = Field(description="the message the persona replies to")
    max_new_tokens: int = Field(default=40, ge=1, le=512)
    seed: int | None = None


def persona_view(persona: Persona, session) -> dict[str, Any]:
    """A persona and its active consent, as GET /personas/{id} shows them (the portal too)."""
    consent = active_consent(session, persona.id)
    return {
        "id": persona.id,
        "owner": persona.owner,
        "status": persona.status,
        "display_name": persona.display_name,
        "self_ids": persona.self_ids,
        "created_at": iso(persona.created_at),
        "consent": None
        if consent is None
        else {
            "id": consent.id,
            "sources": consent.sources,
            "uses": consent.uses,
            "text_sha256": consent.text_sha256,
            "granted_by": consent.granted_by,
            "granted_at": iso(consent.granted_at),
            "expires_at": iso(consent.expires_at),
        },
    }


@router.post("/personas", status_code=201)
def create(request: Request, body: PersonaBody, who: Principal = Depends(principal)) -> dict:
    """A persona and its consent record; every later step checks that consent."""
    state = api_state(request)
    persona = persona_from_body(state.db, _keys(request), who, body)
    with state.db.session() as session:
        return persona_view(session.get(Persona, persona.id), session)


def persona_from_body(db, keys: KeyWrapper, who: Principal, body: PersonaBody) -> Persona:
    """POST /personas' use case on its body (the portal's consent form sends the same)."""
    grant = ConsentGrant(
        sources=tuple(body.consent.sources),
        uses=tuple(body.consent.uses),
        granted_by=body.consent.granted_by,
        text=body.consent.text,
        text_sha256=body.consent.text_sha256,
        granted_at=body.consent.granted_at,
        expires_at=body.consent.expires_at,
    )
    persona, _ = create_persona(db, keys, who, body.display_name, body.self_ids, grant)
    return persona


def visible_personas(db, who: Principal) -> list[dict]:
    """The active personas `who` may see (admins: all), oldest first, as views."""
    with db.session() as session:
        query = select(Persona).where(Persona.status == "active").order_by(Persona.created_at)
        if not who.is_admin:
            query = query.where(Persona.owner == who.user)
        return [persona_view(p, session) for p in session.scalars(query)]


@router.get("/personas")
def list_personas(request: Request, who: Principal = Depends(principal)) -> list[dict]:
    """The active personas the caller may see (admins: all)."""
    return visible_personas(api_state(request).db, who)


@router.get("/personas/{persona_id}")
def get_persona(request: Request, persona_id: str, who: Principal = Depends(principal)) -> dict:
    state = api_state(request)
    with state.db.session() as session:
        view = persona_view(load_persona(session, who, persona_id), session)
    view["sources"] = [source_view(s) for s in list_sources(state.db, persona_id)]
    audit.log(state.db, who.actor, "persona.read", persona_id=persona_id)
    return view


def source_view(source) -> dict[str, Any]:
    return {
        "id": source.id,
        "format": source.format,
        "bytes": source.size_bytes,
        "messages": source.messages,
        "persona_messages": source.persona_messages,
        "uploaded_at": iso(source.uploaded_at),
    }


@router.post("/personas/{persona_id}/sources", status_code=201)
async def upload_source(
    request: Request,
    persona_id: str,
    file: UploadFile = File(description="the export file"),
    format: Literal["whatsapp", "sms_xml", "mbox", "jsonl"] = Form(),
    who: Principal = Depends(principal),
) -> dict:
    """Upload an export (multipart: `file`, `format`). It is parsed whole (422 naming the line
    otherwise), encrypted under the persona's key and stored; persona_source_sensor then
    (re)builds the corpus, dataset and adapter."""
    state = api_state(request)
    limit = state.settings.personas.max_upload_mb * 1024 * 1024
    data = await file.read(limit + 1)
    source = await run_in_threadpool(
        add_source, state.db, state.store, _keys(request), who, persona_id, format, data, limit
    )
    return source_view(source)


@router.get("/personas/{persona_id}/adapters")
def list_adapters(request: Request, persona_id: str, who: Principal = Depends(principal)) -> list:
    """The registry: every adapter version with its corpus, consent, base model, method,
    hyper-parameters and metrics."""
    return adapter_registry(api_state(request).db, who, persona_id)


def adapter_registry(db, who: Principal, persona_id: str) -> list[dict]:
    """The persona's adapter versions, oldest first (404/410 as for the persona)."""
    with db.session() as session:
        load_persona(session, who, persona_id)
        rows = session.scalars(
            select(PersonaAdapter)
            .where(PersonaAdapter.persona_id == persona_id)
            .order_by(PersonaAdapter.version)
        ).all()
        return [drafts.adapter_view(row) for row in rows]


@router.post("/personas/{persona_id}/drafts", status_code=201)
def create_draft(
    request: Request, persona_id: str, body: DraftBody, who: Principal = Depends(principal)
) -> dict:
    """A reply in the persona's style from its newest adapter that passed its checks, held in
    `pending_review` until its owner approves it."""
    state = api_state(request)
    draft, text = state.serving.persona_draft(
        state.db,
        state.store,
        _keys(request),
        who,
        persona_id,
        body.prompt,
        max_new_tokens=body.max_new_tokens,
        seed=body.seed,
    )
    return {**drafts.draft_view(draft), "text": text}


@router.get("/personas/{persona_id}/drafts")
def list_drafts(
    request: Request,
    persona_id: str,
    status: Literal["pending_review", "approved", "rejected"] | None = Query(default=None),
    who: Principal = Depends(principal),
) -> list[dict]:
    """Drafts for review, with their text (decrypted for the owner or an admin)."""
    state = api_state(request)
    return drafts.list_drafts(state.db, _keys(request), who, persona_id, status)


@router.post("/drafts/{draft_id}/approve")
def approve(request: Request, draft_id: str, who: Principal = Depends(principal)) -> dict:
    return drafts.draft_view(drafts.review(api_state(request).db, who, draft_id, "approved"))


@router.post("/drafts/{draft_id}/reject")
def reject(request: Request, draft_id: str, who: Principal = Depends(principal)) -> dict:
    return drafts.draft_view(drafts.review(api_state(request).db, who, draft_id, "rejected"))


@router.get("/drafts/{draft_id}/message")
def released(request: Request, draft_id: str, who: Principal = Depends(principal)) -> dict:
    """An approved draft, released as a message; 409 while pending, rejected drafts never."""
    state = api_state(request)
    return drafts.released_message(state.db, _keys(request), who, draft_id)


@router.get("/personas/{persona_id}/messages")
def released_messages(
    request: Request, persona_id: str, who: Principal = Depends(principal)
) -> list[dict]:
    """Every approved message of the persona, oldest first."""
    state = api_state(request)
    return drafts.list_drafts(state.db, _keys(request), who, persona_id, "approved")


@router.delete("/personas/{persona_id}/consent")
def revoke(request: Request, persona_id: str, who: Principal = Depends(principal)) -> dict:
    """Revoke consent: uploads, corpus, datasets, adapters, drafts and registry rows are deleted
    (and the data key, so no copy can be read); the audit log keeps tombstones."""
    return revoke_persona(api_state(request), who, persona_id)


def revoke_persona(state, who: Principal, persona_id: str) -> dict:
    """DELETE /personas/{id}/consent's use case: the adapter unloaded, then the purge."""
    state.serving.forget_persona(persona_id)
    deleted = revoke_consent(state.db, state.store, who, persona_id, state.settings.home)
    return {"id": persona_id, "status": "revoked", "deleted": deleted}
