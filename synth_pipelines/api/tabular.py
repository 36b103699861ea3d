"""Tabular job endpoints: draft from a prompt, edit the schema, confirm, follow, download."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from synth_pipelines.api.common import api_state, public_base, serve_object
from synth_pipelines.api.schemas import ErrorBody
from synth_pipelines.core.clock import aware
from synth_pipelines.core.errors import ConflictError, FieldError
from synth_pipelines.core.storage.models import TabularJob
from synth_pipelines.core.tabular.jobs import (
    JobParams,
    confirm_job,
    create_job,
    effective_status,
    get_job,
    progress,
    require_confirmed,
    retry_job,
    update_schema,
)
from synth_pipelines.core.tabular.schema import TableSchema

router = APIRouter(prefix="/tabular", tags=["tabular"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (404, 409, 422, 503)
}
MEDIA = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv"}
SCHEMA_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": TableSchema.model_json_schema()}},
    }
}


class DraftBody(BaseModel):
    model_config = ConfigDict(strict=True)

    prompt: str = Field(
        description="what table to make, in plain English",
        examples=["Generate 10k financial transactions with user ID, amount, currency, timestamp"],
    )


class ConfirmBody(BaseModel):
    model_config = ConfigDict(strict=True)

    total_rows: int | None = Field(default=None, description="default: the draft's row count")
    chunk_size: int | None = None
    max_workers: int | None = None
    dedup_threshold: float | None = Field(
        default=None, description="cosine similarity for semantic dedup of text; 1 turns it off"
    )
    seed: int | None = None


class JobView(BaseModel):
    id: str
    status: str
    prompt: str
    drafter: str
    table_schema: dict[str, Any] = Field(alias="schema")
    params: dict[str, Any] | None = None
    completed_chunks: int = 0
    total_chunks: int = 0
    progress_percentage: float = 0.0
    rows_generated: int = 0
    rows_deduplicated: int = 0
    llm_rejects: int = 0
    estimated_completion: datetime | None = None
    created_at: datetime
    confirmed_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    download_url: str | None = Field(default=None, description="Parquet; add ?format=csv for CSV")
    stats: dict[str, Any] | None = None
    error: str | None = None

    model_config = ConfigDict(populate_by_name=True)


def _view(job: TabularJob, request: Request) -> JobView:
    url = None
    status = effective_status(job)
    error = job.error
    if status == "failed" and job.status == "running":
        error = "the generation run stopped without finishing (its lease lapsed); retry it"
    if status == "completed":
        url = f"{public_base(request)}/tabular/jobs/{job.id}/download?format=parquet"
    return JobView(
        id=job.id,
        status=status,
        prompt=job.prompt,
        drafter=job.drafter,
        schema=job.schema_json,
        params=job.params,
        created_at=aware(job.created_at),
        confirmed_at=aware(job.confirmed_at),
        started_at=aware(job.started_at),
        completed_at=aware(job.completed_at),
        download_url=url,
        stats=job.stats,
        error=error,
        **progress(job),
    )


@router.post("/jobs", status_code=201, response_model=JobView, responses=ERRORS)
def draft_job(body: DraftBody, request: Request) -> JobView:
    """Draft a schema from the prompt (offline rules, or the configured LLM). Nothing is
    generated until the job is confirmed."""
    prompt = body.prompt.strip()
    if not prompt:
        raise FieldError("prompt", "prompt is empty: describe the table and name its columns")
    state = api_state(request)
    schema, drafter = state.serving.draft_schema(prompt)
    return _view(create_job(state.db, prompt, schema, drafter), request)


@router.get("/jobs/{job_id}", response_model=JobView, responses=ERRORS)
def job_status(job_id: str, request: Request) -> JobView:
    return _view(get_job(api_state(request).db, job_id), request)


@router.put(
    "/jobs/{job_id}/schema", response_model=JobView, responses=ERRORS, openapi_extra=SCHEMA_BODY
)
def edit_schema(job_id: str, request: Request, body: Any = Body(...)) -> JobView:
    """Replace a draft's schema; 422 names the column at fault, 409 once confirmed."""
    schema = TableSchema.parse(body)
    return _view(update_schema(api_state(request).db, job_id, schema), request)


@router.post("/jobs/{job_id}/confirm", response_model=JobView, responses=ERRORS)
def confirm(job_id: str, request: Request, body: ConfirmBody | None = None) -> JobView:
    """Confirm the schema and the run parameters: the job sensor starts generation."""
    state = api_state(request)
    job = get_job(state.db, job_id)
    settings = state.settings
    params = JobParams.parse(
        (body or ConfirmBody()).model_dump(exclude_none=True),
        default_rows=job.schema_json.get("rows"),
        max_rows=settings.tabular.max_rows,
        default_chunk_size=settings.tabular.chunk_size,
        default_workers=settings.tabular.workers,
        default_threshold=settings.tabular.dedup_threshold,
    )
    return _view(confirm_job(state.db, job_id, params), request)


@router.post("/jobs/{job_id}/generate", status_code=202, response_model=JobView, responses=ERRORS)
def generate(job_id: str, request: Request) -> JobView:
    """Ask for generation: 409 for a draft (confirm it first); a confirmed job is already queued
    for the job sensor, so this only reports where it stands."""
    job = get_job(api_state(request).db, job_id)
    require_confirmed(job)
    return _view(job, request)


@router.post("/jobs/{job_id}/retry", response_model=JobView, responses=ERRORS)
def retry(job_id: str, request: Request) -> JobView:
    """Queue a failed job again."""
    return _view(retry_job(api_state(request).db, job_id), request)


@router.get(
    "/jobs/{job_id}/download",
    response_class=StreamingResponse,
    responses={
        **ERRORS,
        200: {"content": {media: {} for media in MEDIA.values()}},
        307: {"description": "Redirect to a presigned URL (S3 object store)"},
    },
)
def download(job_id: str, request: Request, format: Literal["parquet", "csv"] = Query("parquet")):
    """The generated table as Parquet (zstd) or CSV."""
    state = api_state(request)
    job = get_job(state.db, job_id)
    require_confirmed(job)
    if job.status != "completed" or not job.outputs:
        raise ConflictError(f"tabular job {job_id} is {job.status}, not completed yet")
    return serve_object(
        state.store,
        job.outputs[format],
        media_type=MEDIA[format],
        filename=f"{job_id}.{format}",
        expires_in=3600,
    )
