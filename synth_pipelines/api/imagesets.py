"""Image set endpoints: register a real image set (the image set sensor profiles it, generates a
synthetic set to its profile, validates and exports it), follow it, retry a failed one.

Every call needs an API key; a set is visible to its owner and to admins. An S3 prefix is open
to any key; a path on the server's own disk only to admins (it reads the server's files).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from synth_pipelines.api.common import api_state
from synth_pipelines.api.personas import ERRORS, principal
from synth_pipelines.core.errors import NotFoundError, PermissionDeniedError
from synth_pipelines.core.imagesets.registry import (
    get_image_set,
    list_image_sets,
    register_image_set,
    retry_image_set,
)
from synth_pipelines.core.security.accounts import Principal

router = APIRouter(tags=["image sets"], responses=ERRORS)
Format = Literal["jsonl", "parquet", "webdataset", "imagefolder", "coco"]


class ImageSetBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    source: str = Field(
        description="s3://bucket/prefix, or (admins) a folder, .zip, .parquet or imagefolder "
        "directory on the server",
        examples=["s3://photos/street-scenes/"],
    )
    name: str = Field(default="", description="default: the source's last path segment")
    backend: Literal["simulation", "diffusion", "gan"] | None = Field(
        default=None, description="default: SYNTH_IMAGES_BACKEND"
    )
    count: int | None = Field(default=None, description="synthetic images; SYNTH_IMAGES_COUNT")
    seed: int = 0
    formats: list[Format] | None = Field(default=None, description="SYNTH_IMAGES_FORMATS")
    truncation: float | None = Field(default=None, description="gan: ψ; SYNTH_IMAGES_TRUNCATION")


def _visible(row: dict[str, Any], who: Principal) -> dict[str, Any]:
    if not who.may_see(row["owner"]):
        raise NotFoundError(f"image set {row['id']} not found")
    return row


@router.post("/imagesets", status_code=202)
async def create(
    body: ImageSetBody, request: Request, who: Principal = Depends(principal)
) -> dict[str, Any]:
    """Register an image set: `pending` until the image set sensor starts its run."""
    if not body.source.startswith("s3://") and not who.is_admin:
        raise PermissionDeniedError(
            "a source on the server's disk needs an admin key; give an s3:// prefix"
        )
    images = api_state(request).settings.images
    return await run_in_threadpool(
        register_image_set,
        api_state(request).db,
        body.source,
        name=body.name,
        owner=who.user,
        backend=body.backend or images.backend,
        count=body.count if body.count is not None else images.count,
        seed=body.seed,
        formats=body.formats or list(images.formats),
        truncation=body.truncation if body.truncation is not None else images.truncation,
    )


@router.get("/imagesets")
def index(request: Request, who: Principal = Depends(principal)) -> list[dict[str, Any]]:
    """The newest image sets the caller may see."""
    rows = list_image_sets(api_state(request).db, limit=500)
    return [row for row in rows if who.may_see(row["owner"])][:100]


@router.get("/imagesets/{set_id}")
def status(set_id: str, request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    """Status and stage, counts (images, failed, generated), check summaries, export prefixes."""
    return _visible(get_image_set(api_state(request).db, set_id), who)


@router.post("/imagesets/{set_id}/retry", status_code=202)
def retry(set_id: str, request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    """Queue a failed set again, as a new attempt."""
    db = api_state(request).db
    _visible(get_image_set(db, set_id), who)
    return retry_image_set(db, set_id)
