"""Persona pages: the consent form, uploads of exports with a result per file, training status
and the adapter registry (polled live), prompt → draft → approve or reject → the released
message, and revocation behind a confirmation page.

Every page loads the persona through core's `load_persona` first: to anyone but its owner or an
admin it does not exist (404), and once revoked it is gone (410). The persona's text (drafts,
released messages) is decrypted only for those who pass that check. Forms go through the JSON
endpoints' body models and use cases (`api/personas.py`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from synth_pipelines.api.body_limits import BodyLimit, body_limit
from synth_pipelines.api.common import api_state
from synth_pipelines.api.personas import (
    DraftBody,
    PersonaBody,
    adapter_registry,
    persona_from_body,
    persona_view,
    revoke_persona,
    source_view,
    visible_personas,
)
from synth_pipelines.core.errors import (
    ConflictError,
    FieldError,
    InvalidInputError,
    PermissionDeniedError,
)
from synth_pipelines.core.persona import drafts
from synth_pipelines.core.persona.messages import EXPORT_FORMATS
from synth_pipelines.core.persona.personas import CONSENT_USES, DEFAULT_CONSENT_DAYS, load_persona
from synth_pipelines.core.persona.sources import add_source, list_sources
from synth_pipelines.core.security import audit
from synth_pipelines.core.security.accounts import Principal
from synth_pipelines.portal.pages import core_errors_as_pages, form_error, redirect, render
from synth_pipelines.portal.sessions import PortalError, check_csrf, require_principal

router = APIRouter(
    prefix="/portal/personas",
    dependencies=[Depends(require_principal), Depends(check_csrf)],
    include_in_schema=False,
)
POLL_SECONDS = 3
# What the consent form proposes; the person may edit it. Only its sha256 is kept.
CONSENT_TEXT = (
    "I agree that the chat exports I upload here may be used to train a model of my writing "
    "style, and that drafts written in my style are sent only after I (or an administrator "
    "acting for me) approve each one. I can withdraw this consent at any time; everything made "
    "from my messages is then deleted."
)
# The upload form takes several exports at once; together they are held to the limit one API
# upload has (SYNTH_PERSONA_MAX_UPLOAD_MB), judged from the Content-Length before reading.
body_limit(
    "POST",
    "/portal/personas/{persona_id}/sources",
    BodyLimit("files", lambda settings: settings.personas.max_upload_mb * 2**20,
              "SYNTH_PERSONA_MAX_UPLOAD_MB", "upload fewer or smaller exports at a time",
              page=True),
)  # fmt: skip


def _upload_limit(request: Request) -> int:
    return api_state(request).settings.personas.max_upload_mb * 2**20


def _persona(request: Request, who: Principal, persona_id: str) -> dict[str, Any]:
    """The persona's view and its uploads; 404 to anyone else, 410 once revoked."""
    state = api_state(request)
    with core_errors_as_pages(), state.db.session() as session:
        view = persona_view(load_persona(session, who, persona_id), session)
    view["sources"] = [source_view(s) for s in list_sources(state.db, persona_id)]
    return view


def training_status(sources: list[dict], adapters: list[dict]) -> dict[str, Any]:
    """Where training stands, from the uploads and the registry: `waiting` (nothing uploaded),
    `training` (an upload newer than the newest adapter: persona_training_job has it),
    `ready` (the newest adapter passed its blocking checks), `failed_checks` (it did not)."""
    if not sources:
        return {"state": "waiting", "moving": False, "message": "upload an export to train"}
    newest_upload = max(source["uploaded_at"] for source in sources)
    if not adapters or adapters[-1]["created_at"] < newest_upload:
        version = adapters[-1]["version"] + 1 if adapters else 1
        return {
            "state": "training",
            "moving": True,
            "message": f"adapter v{version} is queued or training on {len(sources)} upload(s)",
        }
    newest = adapters[-1]
    if newest["servable"]:
        return {
            "state": "ready",
            "moving": False,
            "message": f"adapter v{newest['version']} passed its checks: drafts come from it",
        }
    servable = [a["version"] for a in adapters if a["servable"]]
    return {
        "state": "failed_checks",
        "moving": False,
        "message": f"adapter v{newest['version']} did not pass its blocking checks"
        + (f"; drafts come from v{servable[-1]}" if servable else ""),
    }


def _status_context(request: Request, who: Principal, persona_id: str) -> dict[str, Any]:
    persona = _persona(request, who, persona_id)
    with core_errors_as_pages():
        adapters = adapter_registry(api_state(request).db, who, persona_id)
    return {
        "persona": persona,
        "adapters": adapters,
        "training": training_status(persona["sources"], adapters),
        "poll": POLL_SECONDS,
    }


def _page_context(request: Request, who: Principal, persona_id: str, **extra: Any):
    """Everything the persona's page shows, its drafts (with their text) included."""
    context = _status_context(request, who, persona_id)
    state = api_state(request)
    with core_errors_as_pages():
        all_drafts = drafts.list_drafts(state.db, state.keys(), who, persona_id, None)
    return {
        **context,
        "drafts": all_drafts,
        "formats": EXPORT_FORMATS,
        "limit_mb": state.settings.personas.max_upload_mb,
        "values": {},
        "error": None,
        "field": None,
        **extra,
    }


def _form_values(form: FormData | None) -> dict[str, Any]:
    if form is None:
        return {"text": CONSENT_TEXT, "sources": list(EXPORT_FORMATS), "uses": list(CONSENT_USES)}
    values: dict[str, Any] = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    values["sources"] = form.getlist("sources")
    values["uses"] = form.getlist("uses")
    return values


def _consent_context(form: FormData | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "formats": EXPORT_FORMATS,
        "uses": CONSENT_USES,
        "default_days": DEFAULT_CONSENT_DAYS,
        "values": _form_values(form),
        "error": None,
        "field": None,
        **extra,
    }


@router.get("", response_class=HTMLResponse)
def persona_list(request: Request) -> HTMLResponse:
    who = require_principal(request)
    personas = visible_personas(api_state(request).db, who)
    return render(request, "personas/list.html", {"personas": personas, "me": who})


@router.get("/new", response_class=HTMLResponse)
def consent_form(request: Request) -> HTMLResponse:
    return render(request, "personas/new.html", _consent_context())


def consent_body(form: FormData) -> dict[str, Any]:
    """The consent form in POST /personas' JSON shape: self_ids one per line, an empty expiry
    left out (a year, as the API defaults)."""
    consent: dict[str, Any] = {
        "sources": form.getlist("sources"),
        "uses": form.getlist("uses"),
        "granted_by": str(form.get("granted_by", "")),
        "text": str(form.get("text", "")),
    }
    if str(form.get("expires_at", "")).strip():
        consent["expires_at"] = str(form.get("expires_at")).strip()
    return {
        "display_name": str(form.get("display_name", "")),
        "self_ids": [line.strip() for line in str(form.get("self_ids", "")).splitlines()],
        "consent": consent,
    }


@router.post("/new", response_model=None)
async def create(request: Request) -> HTMLResponse | RedirectResponse:
    who = require_principal(request)
    form = await request.form()
    state = api_state(request)
    try:
        body = PersonaBody.model_validate(consent_body(form))
        with core_errors_as_pages():
            persona = await run_in_threadpool(persona_from_body, state.db, state.keys(), who, body)
    except (InvalidInputError, ValidationError) as exc:
        message, field = form_error(exc)
        context = _consent_context(form, error=message, field=field)
        return render(request, "personas/new.html", context, status=422)
    return redirect(request, f"/portal/personas/{persona.id}")


@router.get("/{persona_id}", response_class=HTMLResponse)
def persona_page(request: Request, persona_id: str) -> HTMLResponse:
    who = require_principal(request)
    context = _page_context(request, who, persona_id)
    audit.log(api_state(request).db, who.actor, "persona.read", persona_id=persona_id)
    return render(request, "personas/persona.html", context)


@router.get("/{persona_id}/status", response_class=HTMLResponse)
def status_panel(request: Request, persona_id: str) -> HTMLResponse:
    """The training status and registry alone: what the page's htmx polling swaps in."""
    context = _status_context(request, require_principal(request), persona_id)
    return render(request, "personas/_status.html", context)


async def _read_exports(request: Request, form: FormData) -> list[tuple[str, bytes]]:
    uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    if not uploads:
        raise FieldError("files", "choose one or more export files")
    limit = _upload_limit(request)
    return [(upload.filename or "export", await upload.read(limit + 1)) for upload in uploads]


@router.post("/{persona_id}/sources", response_class=HTMLResponse)
async def upload(request: Request, persona_id: str) -> HTMLResponse:
    """Each export through POST /personas/{id}/sources' use case; one result per file: accepted
    with its counts, or rejected with the API's reason (nothing of a rejected file is kept)."""
    who = require_principal(request)
    state = api_state(request)
    persona = _persona(request, who, persona_id)
    form = await request.form()
    fmt = str(form.get("format", ""))
    try:
        files = await _read_exports(request, form)
    except FieldError as exc:
        context = _page_context(request, who, persona_id, error=str(exc), field=exc.field)
        return render(request, "personas/persona.html", context, status=422)
    results = []
    for name, data in files:
        with core_errors_as_pages():  # a persona gone meanwhile: the page; a bad file: its row
            try:
                source = await run_in_threadpool(
                    add_source, state.db, state.store, state.keys(), who, persona_id, fmt,
                    data, _upload_limit(request),
                )  # fmt: skip
            except (InvalidInputError, PermissionDeniedError) as exc:
                results.append({"name": name, "accepted": False, "reason": str(exc)})
                continue
        results.append({"name": name, "accepted": True, "source": source_view(source)})
    status = 200 if any(r["accepted"] for r in results) else 422
    context = {"persona": persona, "results": results, "format": fmt}
    return render(request, "personas/uploads.html", context, status=status)


@router.post("/{persona_id}/drafts", response_model=None)
async def create_draft(request: Request, persona_id: str) -> HTMLResponse | RedirectResponse:
    """POST /personas/{id}/drafts' body and use case; its refusals (no servable adapter, no
    consent for generation, a bad prompt) beside the prompt field."""
    who = require_principal(request)
    state = api_state(request)
    _persona(request, who, persona_id)
    form = await request.form()
    prompt = str(form.get("prompt", ""))
    with core_errors_as_pages():
        try:
            body = DraftBody.model_validate({"prompt": prompt})
            draft, _ = await run_in_threadpool(
                state.serving.persona_draft, state.db, state.store, state.keys(), who,
                persona_id, body.prompt, max_new_tokens=body.max_new_tokens, seed=body.seed,
            )  # fmt: skip
        except (InvalidInputError, ValidationError) as exc:
            return _draft_refused(request, who, persona_id, prompt, *form_error(exc), 422)
        except (ConflictError, PermissionDeniedError) as exc:
            status = 409 if isinstance(exc, ConflictError) else 403
            return _draft_refused(request, who, persona_id, prompt, str(exc), "prompt", status)
    return redirect(request, f"/portal/personas/{persona_id}/drafts/{draft.id}")


def _draft_refused(
    request: Request,
    who: Principal,
    persona_id: str,
    prompt: str,
    message: str,
    field: str | None,
    status: int,
) -> HTMLResponse:
    """The persona's page again, the prompt kept and the refusal beside its field."""
    context = _page_context(
        request, who, persona_id, values={"prompt": prompt}, error=message, field=field
    )
    return render(request, "personas/persona.html", context, status=status)


def _draft(request: Request, who: Principal, persona_id: str, draft_id: str) -> dict[str, Any]:
    """The persona's draft with its prompt and text (owner or admin only: list_drafts loads the
    persona first); a draft of another persona is a 404 here."""
    state = api_state(request)
    with core_errors_as_pages():
        views = drafts.list_drafts(state.db, state.keys(), who, persona_id, None)
    found = next((view for view in views if view["id"] == draft_id), None)
    if found is None:
        raise PortalError(404, f"draft {draft_id} does not exist")
    return found


@router.get("/{persona_id}/drafts/{draft_id}", response_class=HTMLResponse)
def draft_page(request: Request, persona_id: str, draft_id: str) -> HTMLResponse:
    """A draft for review (approve or reject), or, once approved, the released message as
    GET /drafts/{id}/message releases it."""
    who = require_principal(request)
    persona = _persona(request, who, persona_id)
    draft = _draft(request, who, persona_id, draft_id)
    message = None
    if draft["status"] == "approved":
        state = api_state(request)
        with core_errors_as_pages():
            message = drafts.released_message(state.db, state.keys(), who, draft_id)
    context = {"persona": persona, "draft": draft, "message": message}
    return render(request, "personas/draft.html", context)


def _review(request: Request, persona_id: str, draft_id: str, decision: str) -> RedirectResponse:
    who = require_principal(request)
    _draft(request, who, persona_id, draft_id)  # the draft is this persona's, and visible
    with core_errors_as_pages():
        drafts.review(api_state(request).db, who, draft_id, decision)
    return redirect(request, f"/portal/personas/{persona_id}/drafts/{draft_id}")


@router.post("/{persona_id}/drafts/{draft_id}/approve")
def approve(request: Request, persona_id: str, draft_id: str) -> RedirectResponse:
    return _review(request, persona_id, draft_id, "approved")


@router.post("/{persona_id}/drafts/{draft_id}/reject")
def reject(request: Request, persona_id: str, draft_id: str) -> RedirectResponse:
    return _review(request, persona_id, draft_id, "rejected")


@router.get("/{persona_id}/revoke", response_class=HTMLResponse)
def revoke_form(request: Request, persona_id: str) -> HTMLResponse:
    """The confirmation step: what revocation deletes, and a form that says so."""
    persona = _persona(request, require_principal(request), persona_id)
    context = {"persona": persona, "error": None, "field": None}
    return render(request, "personas/revoke.html", context)


@router.post("/{persona_id}/revoke", response_model=None)
async def revoke(request: Request, persona_id: str) -> HTMLResponse | RedirectResponse:
    """DELETE /personas/{id}/consent's use case, once the confirmation box is ticked."""
    who = require_principal(request)
    persona = _persona(request, who, persona_id)
    form = await request.form()
    if form.get("confirm") != "yes":
        error = "tick the box to confirm: revocation deletes the persona's data for good"
        context = {"persona": persona, "error": error, "field": "confirm"}
        return render(request, "personas/revoke.html", context, status=422)
    with core_errors_as_pages():
        await run_in_threadpool(revoke_persona, api_state(request), who, persona_id)
    return redirect(request, f"/portal/personas/{persona_id}")
