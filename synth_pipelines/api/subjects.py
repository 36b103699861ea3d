"""Flux subject endpoints: create from photos with consent, follow, retry, the LoRA registry,
generation behind a content policy and a bounded queue, revocation.

Every call needs an API key; a subject is visible to its owner and to admins only.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from synth_pipelines.api.body_limits import BodyLimit, body_limit
from synth_pipelines.api.common import api_state
from synth_pipelines.api.personas import ERRORS, principal
from synth_pipelines.api.serving import Images
from synth_pipelines.core.clock import iso
from synth_pipelines.core.errors import ConflictError, FieldError
from synth_pipelines.core.flux.pipeline import lora_view
from synth_pipelines.core.flux.subjects import (
    create_subject,
    load_subject,
    revoke_subject,
)
from synth_pipelines.core.security import audit
from synth_pipelines.core.security.accounts import Principal
from synth_pipelines.core.storage.models import FluxLora, Subject

router = APIRouter(tags=["subjects"], responses={**ERRORS, 429: ERRORS[409]})
# Photos of 4-50 images, or zips of them: a generous cap on the whole upload.
MAX_UPLOAD_BYTES = 500 * 1024 * 1024
body_limit("POST", "/subjects", BodyLimit("photos", lambda _: MAX_UPLOAD_BYTES, "500 MB"))


class GenerateBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    prompt: str = Field(description="what to draw; [trigger] stands for the subject")
    n: int = Field(default=1, ge=1, description="images to draw (at most SYNTH_FLUX_MAX_IMAGES)")
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    steps: int | None = Field(default=None, ge=1, le=100, description="inference steps")
    width: int | None = Field(default=None, ge=64, le=2048, multiple_of=16)
    height: int | None = Field(default=None, ge=64, le=2048, multiple_of=16)


def subject_view(subject: Subject, session) -> dict[str, Any]:
    """A subject as GET /subjects/{id} shows it (the portal too)."""
    loras = session.scalars(
        select(FluxLora).where(FluxLora.subject_id == subject.id).order_by(FluxLora.version)
    ).all()
    return {
        "id": subject.id,
        "owner": subject.owner,
        "status": subject.status,
        "trigger": subject.trigger,
        "uploads": subject.uploads,
        "photos": subject.photos,
        "rejected": subject.rejected,
        "attempts": subject.attempts,
        "error": subject.error,
        "lora_versions": [row.version for row in loras],
        "created_at": iso(subject.created_at),
    }


async def read_photo_uploads(photos: list[UploadFile]) -> list[tuple[str, bytes]]:
    """The uploaded files as (name, bytes), at most MAX_UPLOAD_BYTES in all (422 on `photos`)."""
    files, total = [], 0
    for upload in photos:
        data = await upload.read(MAX_UPLOAD_BYTES + 1 - total)
        total += len(data)
        if total > MAX_UPLOAD_BYTES:
            raise FieldError("photos", f"the upload is over {MAX_UPLOAD_BYTES // 2**20} MB")
        files.append((upload.filename or "photo", data))
    return files


@router.post("/subjects", status_code=202)
async def create(
    request: Request,
    photos: list[UploadFile] = File(description="4-50 photos of one person, or a zip of them"),
    trigger: str = Form(description="the word that stands for the subject, e.g. sks_ada"),
    consent: bool = Form(description="true: the person agreed to a model of their likeness"),
    who: Principal = Depends(principal),
) -> dict:
    """A subject from photos: stored encrypted and `pending`; subject_sensor prepares the photos
    and trains the LoRA. Without consent nothing is stored (403)."""
    state = api_state(request)
    files = await read_photo_uploads(photos)
    subject = await run_in_threadpool(
        create_subject, state.db, state.store, state.keys(), who, files, trigger, consent
    )
    with state.db.session() as session:
        return subject_view(session.get(Subject, subject.id), session)


@router.get("/subjects/{subject_id}")
def get_subject(request: Request, subject_id: str, who: Principal = Depends(principal)) -> dict:
    """Status, accepted photos, every rejected photo with its reason, LoRA versions."""
    with api_state(request).db.session() as session:
        return subject_view(load_subject(session, who, subject_id), session)


@router.post("/subjects/{subject_id}/retry", status_code=202)
def retry(request: Request, subject_id: str, who: Principal = Depends(principal)) -> dict:
    """Run a failed subject again (e.g. after fixing SYNTH_FLUX_BASE_MODEL)."""
    return retry_subject(api_state(request).db, who, subject_id)


def retry_subject(db, who: Principal, subject_id: str) -> dict:
    """POST /subjects/{id}/retry's use case (the portal's too): a failed subject back to
    pending, for the subject sensor's next tick; 409 unless it failed."""
    with db.session(locking=True) as session:
        subject = load_subject(session, who, subject_id)
        if subject.status != "failed":
            raise ConflictError(f"subject {subject_id} is {subject.status}, not failed")
        subject.status = "pending"
        audit.append(session, who.actor, "subject.retried", target=subject_id)
        return subject_view(subject, session)


@router.get("/subjects/{subject_id}/loras")
def loras(request: Request, subject_id: str, who: Principal = Depends(principal)) -> list[dict]:
    """The registry: each LoRA version with its base model, settings and metrics."""
    return lora_registry(api_state(request).db, who, subject_id)


def lora_registry(db, who: Principal, subject_id: str) -> list[dict]:
    """The subject's LoRA versions, oldest first (404/410 as for the subject)."""
    with db.session() as session:
        load_subject(session, who, subject_id)
        rows = session.scalars(
            select(FluxLora).where(FluxLora.subject_id == subject_id).order_by(FluxLora.version)
        ).all()
        return [lora_view(row) for row in rows]


@router.post("/subjects/{subject_id}/generate")
def generate_images(
    request: Request, subject_id: str, body: GenerateBody, who: Principal = Depends(principal)
) -> dict:
    """Images (base64 PNG) from the subject's newest LoRA. The prompt is checked against the
    content policy first (403); at most SYNTH_FLUX_CONCURRENCY generations run at once and
    SYNTH_FLUX_QUEUE wait, beyond that 429."""
    images = generate_subject_images(api_state(request), who, subject_id, body)
    return {
        "subject_id": subject_id,
        "lora_version": images.lora_version,
        "seed": body.seed,
        "queue_seconds": round(images.queue_seconds, 3),
        "seconds": round(images.seconds, 3),
        "images": [base64.b64encode(png).decode() for png in images.pngs],
    }


def generate_subject_images(state, who: Principal, subject_id: str, body: GenerateBody) -> Images:
    """POST /subjects/{id}/generate's use case: the content policy, the queue, the images, and
    the audit record (the portal's prompt form sends the same body)."""
    images = state.serving.flux_images(
        state.db,
        state.store,
        state.keys(),
        who,
        subject_id,
        body.prompt,
        n=body.n,
        seed=body.seed,
        steps=body.steps,
        width=body.width,
        height=body.height,
    )
    audit.log(
        state.db,
        who.actor,
        "flux.generated",
        target=subject_id,
        details={"lora_id": images.lora_id, "n": body.n, "seed": body.seed},
    )
    return images


@router.delete("/subjects/{subject_id}")
def revoke(request: Request, subject_id: str, who: Principal = Depends(principal)) -> dict:
    """Withdraw consent: photos, LoRAs, samples, registry rows and the data key are deleted."""
    return withdraw_subject(api_state(request), who, subject_id)


def withdraw_subject(state, who: Principal, subject_id: str) -> dict:
    """DELETE /subjects/{id}'s use case: the LoRA unloaded, then the purge."""
    state.serving.forget_subject(subject_id)
    deleted = revoke_subject(state.db, state.store, who, subject_id, state.settings.home)
    return {"id": subject_id, "status": "revoked", "deleted": deleted}
