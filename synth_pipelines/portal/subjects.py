"""Subject pages: consent and photo upload, the status (polled live) with the accepted photos and
every rejected one with its reason as thumbnails, the LoRA registry and its sample gallery,
prompt → generated gallery with the content policy's refusals beside the prompt, a failed
subject's retry, and revocation behind a confirmation page.

Every page and every image loads the subject through core's `load_subject` first: to anyone but
its owner or an admin it does not exist (404), and once revoked it is gone (410). Images are
decrypted per request by `subject_images` routes, never served from a public path. Forms go
through the JSON endpoints' body models and use cases (`api/subjects.py`)."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from synth_pipelines.api.body_limits import BodyLimit, body_limit
from synth_pipelines.api.common import api_state
from synth_pipelines.api.subjects import (
    MAX_UPLOAD_BYTES,
    GenerateBody,
    generate_subject_images,
    lora_registry,
    read_photo_uploads,
    retry_subject,
    subject_view,
    withdraw_subject,
)
from synth_pipelines.core.errors import (
    BusyError,
    ConflictError,
    InvalidInputError,
    PermissionDeniedError,
)
from synth_pipelines.core.flux.photos_upload import MAX_PHOTOS, MIN_PHOTOS
from synth_pipelines.core.flux.subjects import create_subject, load_subject, visible_subjects
from synth_pipelines.core.security.accounts import Principal
from synth_pipelines.portal import subject_images
from synth_pipelines.portal.datasets import _number
from synth_pipelines.portal.pages import POLICY, core_errors_as_pages, form_error, redirect, render
from synth_pipelines.portal.sessions import check_csrf, require_principal

router = APIRouter(
    prefix="/portal/subjects",
    dependencies=[Depends(require_principal), Depends(check_csrf)],
    include_in_schema=False,
)
POLL_SECONDS = 3
MOVING = ("pending", "preparing", "training")  # a subject's page polls while it is in one
body_limit("POST", "/portal/subjects/new",
           BodyLimit("photos", lambda _: MAX_UPLOAD_BYTES, "500 MB", page=True))  # fmt: skip


def _subject(request: Request, who: Principal, subject_id: str) -> dict[str, Any]:
    """The subject's view; 404 to anyone but its owner or an admin, 410 once revoked."""
    with core_errors_as_pages(), api_state(request).db.session() as session:
        return subject_view(load_subject(session, who, subject_id), session)


def _status_context(request: Request, who: Principal, subject_id: str) -> dict[str, Any]:
    subject = _subject(request, who, subject_id)
    state = api_state(request)
    with core_errors_as_pages():
        loras = lora_registry(state.db, who, subject_id)
        gallery = subject_images.gallery(state.db, state.store, state.keys(), who, subject_id)
    return {
        "subject": subject,
        "loras": loras,
        "gallery": gallery,
        "moving": subject["status"] in MOVING,
        "poll": POLL_SECONDS,
    }


def _page_context(request: Request, who: Principal, subject_id: str, **extra: Any):
    return {
        **_status_context(request, who, subject_id),
        "max_images": api_state(request).settings.flux.max_images,
        "values": {"n": "1", "seed": "0"},
        "images": [],
        "error": None,
        "field": None,
        **extra,
    }


def _new_context(form: FormData | None = None, **extra: Any) -> dict[str, Any]:
    values = {k: str(v) for k, v in (form or {}).items() if isinstance(v, str)}
    return {
        "values": values,
        "min_photos": MIN_PHOTOS,
        "max_photos": MAX_PHOTOS,
        "error": None,
        "field": None,
        **extra,
    }


@router.get("", response_class=HTMLResponse)
def subject_list(request: Request) -> HTMLResponse:
    who = require_principal(request)
    with api_state(request).db.session() as session:
        subjects = [subject_view(s, session) for s in visible_subjects(session, who)]
    return render(request, "subjects/list.html", {"subjects": subjects, "me": who})


@router.get("/new", response_class=HTMLResponse)
def new_form(request: Request) -> HTMLResponse:
    return render(request, "subjects/new.html", _new_context())


@router.post("/new", response_model=None)
async def create(request: Request) -> HTMLResponse | RedirectResponse:
    """POST /subjects' use case: without the consent box ticked nothing is stored (403 beside
    it); a bad trigger or upload is the API's 422 beside its field."""
    who = require_principal(request)
    state = api_state(request)
    form = await request.form()
    photos = [f for f in form.getlist("photos") if isinstance(f, UploadFile) and f.filename]
    with core_errors_as_pages():
        try:
            files = await read_photo_uploads(photos)
            subject = await run_in_threadpool(
                create_subject, state.db, state.store, state.keys(), who, files,
                str(form.get("trigger", "")), form.get("consent") == "true",
            )  # fmt: skip
        except InvalidInputError as exc:
            message, field = form_error(exc)
            context = _new_context(form, error=message, field=field or "photos")
            return render(request, "subjects/new.html", context, status=422)
        except PermissionDeniedError as exc:  # no consent: nothing was stored
            context = _new_context(form, error=str(exc), field="consent")
            return render(request, "subjects/new.html", context, status=403)
    return redirect(request, f"/portal/subjects/{subject.id}")


@router.get("/{subject_id}", response_class=HTMLResponse)
def subject_page(request: Request, subject_id: str) -> HTMLResponse:
    who = require_principal(request)
    return render(request, "subjects/subject.html", _page_context(request, who, subject_id))


@router.get("/{subject_id}/status", response_class=HTMLResponse)
def status_panel(request: Request, subject_id: str) -> HTMLResponse:
    """The status, photos, registry and samples alone: what the page's htmx polling swaps in."""
    context = _status_context(request, require_principal(request), subject_id)
    return render(request, "subjects/_status.html", context)


def _png(data: bytes) -> Response:
    # The subject's likeness: never cached, never sniffed, never embedded elsewhere.
    headers = {**POLICY, "Cache-Control": "private, no-store"}
    return Response(data, media_type="image/png", headers=headers)


@router.get("/{subject_id}/photos/{index}.png")
def accepted_photo(request: Request, subject_id: str, index: int) -> Response:
    """A thumbnail of the `index`th prepared (accepted) photo."""
    state = api_state(request)
    with core_errors_as_pages():
        png = subject_images.accepted_thumbnail(
            state.db, state.store, state.keys(), require_principal(request), subject_id, index
        )
    return _png(png)


@router.get("/{subject_id}/rejected/{index}.png")
def rejected_photo(request: Request, subject_id: str, index: int) -> Response:
    """A thumbnail of the `index`th rejected upload (a placeholder where it cannot be decoded)."""
    state = api_state(request)
    with core_errors_as_pages():
        png = subject_images.rejected_thumbnail(
            state.db, state.store, state.keys(), require_principal(request), subject_id, index
        )
    return _png(png)


@router.get("/{subject_id}/samples/v{version}/{name}.png")
def sample(request: Request, subject_id: str, version: int, name: str) -> Response:
    """One validation sample of LoRA `version` (`final-0`, `step-000003-0`, …)."""
    state = api_state(request)
    with core_errors_as_pages():
        png = subject_images.sample_png(
            state.db, state.store, state.keys(), require_principal(request), subject_id,
            version, name,
        )  # fmt: skip
    return _png(png)


def _generate_body(form: FormData) -> dict[str, Any]:
    """The prompt form in POST /subjects/{id}/generate's JSON shape (empty steps: the default)."""
    body: dict[str, Any] = {
        "prompt": str(form.get("prompt", "")),
        "n": _number(str(form.get("n", "1")) or "1"),
        "seed": _number(str(form.get("seed", "0")) or "0"),
    }
    if str(form.get("steps", "")).strip():
        body["steps"] = _number(str(form.get("steps")))
    return body


@router.post("/{subject_id}/generate", response_class=HTMLResponse)
async def generate(request: Request, subject_id: str) -> HTMLResponse:
    """POST /subjects/{id}/generate's body and use case; the images come back on the page (they
    are not stored). The content policy's refusal, a full queue or a subject with no LoRA yet
    is a message beside the prompt."""
    who = require_principal(request)
    state = api_state(request)
    _subject(request, who, subject_id)  # 404/410 before anything else
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    status, error, field, images = 200, None, None, []
    with core_errors_as_pages():
        try:
            body = GenerateBody.model_validate(_generate_body(form))
            result = await run_in_threadpool(generate_subject_images, state, who, subject_id, body)
            images = [base64.b64encode(png).decode() for png in result.pngs]
        except (InvalidInputError, ValidationError) as exc:
            (error, field), status = form_error(exc), 422
        except PermissionDeniedError as exc:  # the content policy
            error, field, status = str(exc), "prompt", 403
        except ConflictError as exc:  # no LoRA yet
            error, field, status = str(exc), "prompt", 409
        except BusyError as exc:  # the generation queue is full
            error, field, status = str(exc), "prompt", 429
    context = _page_context(
        request, who, subject_id, values=values, images=images, error=error, field=field
    )
    return render(request, "subjects/subject.html", context, status=status)


@router.get("/{subject_id}/revoke", response_class=HTMLResponse)
def revoke_form(request: Request, subject_id: str) -> HTMLResponse:
    """The confirmation step: what revocation deletes, and a form that says so."""
    subject = _subject(request, require_principal(request), subject_id)
    context = {"subject": subject, "error": None, "field": None}
    return render(request, "subjects/revoke.html", context)


@router.post("/{subject_id}/revoke", response_model=None)
async def revoke(request: Request, subject_id: str) -> HTMLResponse | RedirectResponse:
    """DELETE /subjects/{id}'s use case, once the confirmation box is ticked."""
    who = require_principal(request)
    subject = _subject(request, who, subject_id)
    form = await request.form()
    if form.get("confirm") != "yes":
        error = "tick the box to confirm: revocation deletes the subject's photos and LoRAs"
        context = {"subject": subject, "error": error, "field": "confirm"}
        return render(request, "subjects/revoke.html", context, status=422)
    with core_errors_as_pages():
        await run_in_threadpool(withdraw_subject, api_state(request), who, subject_id)
    return redirect(request, f"/portal/subjects/{subject_id}")


@router.post("/{subject_id}/retry", response_model=None)
async def retry(request: Request, subject_id: str) -> RedirectResponse:
    """POST /subjects/{id}/retry's use case: a failed subject queued again (409 page otherwise),
    e.g. once more photos are usable or the base model is fixed."""
    with core_errors_as_pages():
        await run_in_threadpool(
            retry_subject, api_state(request).db, require_principal(request), subject_id
        )
    return redirect(request, f"/portal/subjects/{subject_id}")
