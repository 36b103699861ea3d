"""Dataset endpoints: request, status, download, retry (and the Personix-compatible aliases)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from synth_pipelines.api.common import api_state, public_base, serve_object
from synth_pipelines.api.schemas import DatasetRequestBody, DatasetStatus, ErrorBody
from synth_pipelines.core.clock import aware, utcnow
from synth_pipelines.core.delivery.download_codes import authorize_download, new_download_code
from synth_pipelines.core.delivery.requests import create_request, get_request, retry_request
from synth_pipelines.core.delivery.spec import DatasetSpec, request_spec
from synth_pipelines.core.delivery.status import effective_status
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import DatasetRequest

router = APIRouter(tags=["datasets"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (404, 409, 410, 422, 503)
}
MEDIA = {"zip": ("application/zip", "zip"), "webdataset": ("application/x-tar", "tar")}
DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {
        "description": "The archive, streamed (local object store)",
        "content": {media: {} for media, _ in MEDIA.values()},
    },
    307: {"description": "Redirect to a presigned URL of the archive (S3 object store)"},
}


def status_view(row: DatasetRequest, download_url: str | None = None) -> DatasetStatus:
    """A stored request as the API answers it (and the portal shows it)."""
    status, spec = effective_status(row), request_spec(row)
    counts = {"requested": spec.buckets}
    if row.delivered:
        counts["delivered"] = row.delivered
    queue = None
    if row.completed_at is not None:
        queue = (aware(row.completed_at) - aware(row.created_at)).total_seconds()
    error = row.error
    if status == "failed" and row.status == "packaging":
        error = "the packaging run stopped without finishing (its lease expired); retry it"
    return DatasetStatus(
        id=row.id,
        status=status,
        counts=counts,
        format=spec.format,
        image_size=spec.image_size,
        exclusive=spec.exclusive,
        created_at=aware(row.created_at),
        started_at=aware(row.started_at),
        completed_at=aware(row.completed_at),
        queue_to_ready_seconds=queue,
        download_ready=status == "ready",
        expires_at=aware(row.expires_at) if status in ("ready", "expired") else None,
        download_url=download_url,
        downloads=row.downloads,
        reason=row.reason if status == "backordered" else None,
        error=error if status == "failed" else None,
    )


def issue_download_code(db: FactoryDatabase, spec: DatasetSpec) -> tuple[DatasetRequest, str]:
    """A new pending request and its download code in clear; only the code's hash is stored."""
    code, code_hash = new_download_code()
    return create_request(db, spec, code_hash=code_hash), code


@router.post("/datasets", status_code=202, response_model=DatasetStatus, responses=ERRORS)
@router.post(
    "/dataset/request", status_code=202, response_model=DatasetStatus, responses=ERRORS,
    include_in_schema=False,
)  # fmt: skip
async def request_dataset(body: DatasetRequestBody, request: Request) -> DatasetStatus:
    """Ask for faces per bucket. The answer's `download_url` is shown only here: keep it."""
    # The two most requested endpoints are `async def` with their database work in the
    # threadpool: a plain `def` handler costs FastAPI a second threadpool trip, to check the
    # returned model against response_model, and each trip is a thread switch under the GIL.
    state = api_state(request)
    spec = DatasetSpec.parse(body.model_dump(), state.settings.datasets.max_size)
    row, code = await run_in_threadpool(issue_download_code, state.db, spec)
    return status_view(row, download_link(request, row.id, code))


def download_link(request: Request, request_id: str, code: str) -> str:
    """The one-time link to a request's archive, holding its download code in clear."""
    return f"{public_base(request)}/datasets/{request_id}/download/{code}"


@router.get("/datasets/{request_id}", response_model=DatasetStatus, responses=ERRORS)
@router.get(
    "/dataset/status/{request_id}", response_model=DatasetStatus, responses=ERRORS,
    include_in_schema=False,
)  # fmt: skip
async def dataset_status(request_id: str, request: Request) -> DatasetStatus:
    return status_view(await run_in_threadpool(get_request, api_state(request).db, request_id))


@router.post(
    "/datasets/{request_id}/retry", status_code=202, response_model=DatasetStatus,
    responses=ERRORS,
)  # fmt: skip
def retry_dataset(request_id: str, request: Request) -> DatasetStatus:
    """Queue a failed request again (its download link stays the same)."""
    return status_view(retry_request(api_state(request).db, request_id))


@router.get(
    "/datasets/{request_id}/download/{code}",
    response_class=StreamingResponse,
    responses=DOWNLOAD_RESPONSES,
)
@router.get(
    "/dataset/download/{request_id}/{code}",
    response_class=StreamingResponse,
    responses=DOWNLOAD_RESPONSES,
    include_in_schema=False,
)
def download_dataset(request_id: str, code: str, request: Request):
    """The archive: streamed from a local store, or a redirect to a presigned S3 URL."""
    state = api_state(request)
    row = authorize_download(state.db, request_id, code)
    media, suffix = MEDIA[request_spec(row).format]
    # A presigned URL must not outlive the link that handed it out.
    remaining = int((aware(row.expires_at) - utcnow()).total_seconds())
    return serve_object(
        state.store,
        row.archive_key,
        media_type=media,
        filename=f"synth-faces-{request_id}.{suffix}",
        expires_in=max(1, min(remaining, 3600)),
    )
