"""Tabular job endpoints: draft from a prompt or fit to a real sample, edit the schema, confirm,
follow, download."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from synth_pipelines.api.body_limits import BodyLimit, body_limit
from synth_pipelines.api.common import api_state, public_base, serve_object
from synth_pipelines.api.personas import bearer, principal
from synth_pipelines.api.schemas import ErrorBody
from synth_pipelines.core.clock import aware
from synth_pipelines.core.errors import ConflictError, FieldError, PermissionDeniedError
from synth_pipelines.core.security.accounts import Principal
from synth_pipelines.core.storage.models import TabularJob
from synth_pipelines.core.tabular.fitted.jobs import create_fitted_job, fetch_sample, public_sample
from synth_pipelines.core.tabular.fitted.related_jobs import (
    create_related_job,
    is_related,
    table_names,
)
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
# The largest sample upload: this route's, and the portal's upload form's.
SAMPLE_LIMIT = BodyLimit(
    "sample",
    lambda settings: settings.tabular.sample_max_bytes,
    "SYNTH_TABULAR_SAMPLE_MAX_MB",
    "upload a smaller sample; a few thousand rows fit a model well",
)
body_limit("POST", "/tabular/jobs", SAMPLE_LIMIT)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 503)
}
MAX_TABLES = 16  # file parts of one multipart upload (one per table)
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
    sample: dict[str, Any] | None = Field(
        default=None,
        description="a fitted job's sample: file name, rows, train/holdout split, deleted",
    )
    reports: dict[str, Any] | None = Field(
        default=None, description="a fitted job's quality and privacy reports, once generated"
    )
    tables: dict[str, Any] | None = Field(
        default=None,
        description="a job fitted to tables joined by keys: each table's inferred schema (parents "
        "first; `schema` is the first root table's) and the keys",
    )
    download_urls: dict[str, str] | None = Field(
        default=None, description="a completed multi-table job: each table's Parquet download"
    )

    model_config = ConfigDict(populate_by_name=True)


def job_view(job: TabularJob, request: Request) -> JobView:
    """What GET /tabular/jobs/{id} answers for `job` (the portal shows the same)."""
    url = None
    status = effective_status(job)
    error = job.error
    if status == "failed" and job.status == "running":
        error = "the generation run stopped without finishing (its lease lapsed); retry it"
    tables = urls = None
    if is_related(job):
        fitted = job.tables["fitted"]
        tables = {
            "schemas": {name: fitted["tables"][name] for name in fitted["order"]},
            "keys": job.tables["keys"],
        }
    if status == "completed":
        url = f"{public_base(request)}/tabular/jobs/{job.id}/download?format=parquet"
        if tables is not None:
            urls = {name: f"{url}&table={name}" for name in tables["schemas"]}
            url = None
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
        sample=public_sample(job.sample),
        reports=job.reports,
        tables=tables,
        download_urls=urls,
        **progress(job),
    )


class SampleBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    sample: str = Field(
        description="s3://bucket/key.csv (or .parquet), or (admins) a path on the server",
        examples=["s3://samples/customers.csv"],
    )
    rows: int | None = Field(default=None, ge=1, description="default: the sample's row count")
    seed: int = Field(default=0, ge=0, description="the holdout split and the fit")


class SamplesBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    samples: list[str] = Field(
        min_length=2,
        description="one sample per table (its file name names the table): s3://bucket/key.csv "
        "(or .parquet), or (admins) paths on the server",
        examples=[["s3://samples/customers.csv", "s3://samples/orders.csv"]],
    )
    keys: list[str] = Field(
        min_length=1,
        description="the foreign keys, child.column=parent.column each",
        examples=[["orders.customer_id=customers.customer_id"]],
    )
    rows: int | None = Field(
        default=None, ge=1, description="rows of each root table; default: its sample's"
    )
    seed: int = Field(default=0, ge=0, description="the holdout split, the fit and sampling")


CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        DraftBody.model_json_schema(),
                        SampleBody.model_json_schema(),
                        SamplesBody.model_json_schema(),
                    ]
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "description": "the sample; several (one per table) with `key`",
                            "oneOf": [
                                {"type": "string", "format": "binary"},
                                {"type": "array", "items": {"type": "string", "format": "binary"}},
                            ],
                        },
                        "key": {
                            "description": "tables joined by keys: child.column=parent.column "
                            "(repeat for each foreign key)",
                            "type": "array",
                            "items": {"type": "string"},
                        },
                        "rows": {"type": "integer", "minimum": 1},
                        "seed": {"type": "integer", "minimum": 0},
                    },
                }
            },
        },
    }
}


@router.post(
    "/jobs", status_code=201, response_model=JobView, responses=ERRORS, openapi_extra=CREATE_BODY
)
async def create_job_endpoint(request: Request) -> JobView:
    """A draft job, three ways:

    - JSON `{"prompt": ...}`: a schema drafted from plain English (offline rules, or the
      configured LLM);
    - multipart with a `file` (CSV or Parquet), or JSON `{"sample": "s3://..."}` (admins: a
      path on the server): a schema inferred from that real sample and a model fitted to it,
      the sample stored encrypted (SYNTH_MASTER_KEY), a holdout of it kept from the fit for the
      privacy checks. These need an API key;
    - multipart with several `file` parts (one table each, named after its file) and one or
      more `key` fields (`child.column=parent.column`), or JSON `{"samples": [...], "keys":
      [...]}`: tables joined by keys, fitted together, generated with every key intact and
      checked per table. `rows` is then the rows of each root table.

    Nothing is generated until the job is confirmed. A sample that cannot be fitted is a 422
    naming the column and the reason."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _fitted_from_upload(request)
    body = await _json_object(request)
    if "samples" in body:
        fields = _validated(SamplesBody, body)
        who = await _caller(request)
        if not all(s.startswith("s3://") for s in fields.samples) and not who.is_admin:
            raise PermissionDeniedError(
                "a sample on the server's disk needs an admin key; upload the files or give "
                "s3:// URIs"
            )
        limit = api_state(request).settings.tabular.sample_max_bytes
        files = [await run_in_threadpool(fetch_sample, s, limit) for s in fields.samples]
        return await _related(request, who, files, fields.keys, fields.rows, fields.seed)
    if "sample" in body:
        fields = _validated(SampleBody, body)
        who = await _caller(request)
        if not fields.sample.startswith("s3://") and not who.is_admin:
            raise PermissionDeniedError(
                "a sample on the server's disk needs an admin key; upload the file or give an "
                "s3:// URI"
            )
        limit = api_state(request).settings.tabular.sample_max_bytes
        data, filename = await run_in_threadpool(fetch_sample, fields.sample, limit)
        return await _fitted(request, who, data, filename, fields.rows, fields.seed)
    prompt = _validated(DraftBody, body).prompt
    return job_view(await draft_job(api_state(request), prompt), request)


async def draft_job(state: Any, prompt: str, owner: str | None = None) -> TabularJob:
    """A draft job from `prompt` (a DraftBody's): its schema drafted off the event loop by the
    offline rules or the configured LLM. `owner`: who it is for (the portal's signed-in
    person; the prompt path of the API takes no key, so none there)."""
    prompt = prompt.strip()
    if not prompt:
        raise FieldError("prompt", "prompt is empty: describe the table and name its columns")
    schema, drafter = await run_in_threadpool(state.serving.draft_schema, prompt)
    return create_job(state.db, prompt, schema, drafter, owner=owner)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FieldError("body", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise FieldError(
            "body",
            'the body must be a JSON object: {"prompt": "..."} or {"sample": "s3://..."}, or a '
            "multipart upload with a file",
        )
    return body


def _validated(model: type[BaseModel], body: dict[str, Any]) -> Any:
    """`body` as `model`; its errors answered as any route's body errors are (the app's
    RequestValidationError handler: a 422 naming the field)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None


async def _caller(request: Request) -> Principal:
    """The caller from their API key, as every keyed route reads it (401 without one): the
    prompt path of this route takes none, so the key is read here, not as a dependency."""
    return principal(request, await bearer(request))


def form_integer(form: Any, name: str) -> int | None:
    """A multipart form's `rows` (at least 1) or `seed` (at least 0); None when left empty."""
    raw = form.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(str(raw))
    except ValueError:
        raise FieldError(name, f"{name} must be an integer, got {raw!r}") from None
    if value < (1 if name == "rows" else 0):
        raise FieldError(name, f"{name} must be at least {1 if name == 'rows' else 0}")
    return value


async def _fitted_from_upload(request: Request) -> JobView:
    """The multipart path. Its size was judged from Content-Length before anything was read
    (the body limit registered below), so a 10 GB upload is refused without receiving it."""
    who = await _caller(request)
    limit = api_state(request).settings.tabular.sample_max_bytes
    form = await request.form(max_files=MAX_TABLES, max_fields=8 + MAX_TABLES)
    try:
        uploads = form.getlist("file")
        if not uploads or any(isinstance(upload, str) for upload in uploads):
            raise FieldError("file", "file is required: the sample, as CSV or Parquet")
        keys = [str(key) for key in form.getlist("key")]
        files = []
        for upload in uploads:
            files.append((await upload.read(limit + 1), upload.filename or "sample.csv"))
        rows, seed = form_integer(form, "rows"), form_integer(form, "seed") or 0
    finally:
        await form.close()
    return job_view(await fit_uploads(api_state(request), who, files, keys, rows, seed), request)


async def fit_uploads(
    state: Any,
    who: Principal,
    files: list[tuple[bytes, str]],
    keys: list[str],
    rows: int | None,
    seed: int,
) -> TabularJob:
    """A job fitted to uploaded samples, each (data, file name): one sample, or several joined
    by `keys` (child.column=parent.column). The API's multipart path and the portal's form."""
    if len(files) > 1 or keys:
        return await fit_job(state, who, create_related_job, files, keys, rows=rows, seed=seed)
    ((data, filename),) = files
    return await fit_job(
        state, who, create_fitted_job, data, filename=filename, rows=rows, seed=seed
    )


async def _fitted(
    request: Request,
    who: Principal,
    data: bytes | Any,
    filename: str,
    rows: int | None,
    seed: int,
) -> JobView:
    """A job fitted to one sample."""
    return await _create_fitted(
        request, who, create_fitted_job, data, filename=filename, rows=rows, seed=seed
    )


async def _related(
    request: Request,
    who: Principal,
    files: list[tuple[Any, str]],
    keys: list[str],
    rows: int | None,
    seed: int,
) -> JobView:
    """A job fitted to several samples joined by `keys`."""
    return await _create_fitted(request, who, create_related_job, files, keys, rows=rows, seed=seed)


async def _create_fitted(
    request: Request, who: Principal, use_case: Any, *args: Any, **kwargs: Any
) -> JobView:
    return job_view(await fit_job(api_state(request), who, use_case, *args, **kwargs), request)


async def fit_job(
    state: Any, who: Principal, use_case: Any, *args: Any, **kwargs: Any
) -> TabularJob:
    """Run the fitting `use_case` off the event loop with the app's DB, store, keyring and
    sample settings."""
    tabular = state.settings.tabular
    job = await run_in_threadpool(
        functools.partial(
            use_case, state.db, state.store, state.keys(), *args,
            owner=who.user, max_bytes=tabular.sample_max_bytes,
            holdout_share=tabular.holdout_share,
            min_category_count=tabular.min_category_count, **kwargs,
        )
    )  # fmt: skip
    return job


@router.get("/jobs/{job_id}", response_model=JobView, responses=ERRORS)
def job_status(job_id: str, request: Request) -> JobView:
    return job_view(get_job(api_state(request).db, job_id), request)


@router.put(
    "/jobs/{job_id}/schema", response_model=JobView, responses=ERRORS, openapi_extra=SCHEMA_BODY
)
def edit_schema(job_id: str, request: Request, body: Any = Body(...)) -> JobView:
    """Replace a draft's schema; 422 names the column at fault, 409 once confirmed."""
    schema = TableSchema.parse(body)
    return job_view(update_schema(api_state(request).db, job_id, schema), request)


@router.post("/jobs/{job_id}/confirm", response_model=JobView, responses=ERRORS)
def confirm(job_id: str, request: Request, body: ConfirmBody | None = None) -> JobView:
    """Confirm the schema and the run parameters: the job sensor starts generation."""
    return job_view(confirm_draft(api_state(request), job_id, body or ConfirmBody()), request)


def confirm_draft(state: Any, job_id: str, body: ConfirmBody) -> TabularJob:
    """Confirm `job_id` with `body`'s parameters, each defaulting to the draft's row count or
    this deployment's SYNTH_TABULAR_* settings (the API's route and the portal's form)."""
    job = get_job(state.db, job_id)
    tabular = state.settings.tabular
    params = JobParams.parse(
        body.model_dump(exclude_none=True),
        default_rows=job.schema_json.get("rows"),
        max_rows=tabular.max_rows,
        default_chunk_size=tabular.chunk_size,
        default_workers=tabular.workers,
        default_threshold=tabular.dedup_threshold,
    )
    return confirm_job(state.db, job_id, params, tabular.max_rows)


@router.post("/jobs/{job_id}/generate", status_code=202, response_model=JobView, responses=ERRORS)
def generate(job_id: str, request: Request) -> JobView:
    """Ask for generation: 409 for a draft (confirm it first); a confirmed job is already queued
    for the job sensor, so this only reports where it stands."""
    job = get_job(api_state(request).db, job_id)
    require_confirmed(job)
    return job_view(job, request)


@router.post("/jobs/{job_id}/retry", response_model=JobView, responses=ERRORS)
def retry(job_id: str, request: Request) -> JobView:
    """Queue a failed job again."""
    return job_view(retry_job(api_state(request).db, job_id), request)


@router.get(
    "/jobs/{job_id}/download",
    response_class=StreamingResponse,
    responses={
        **ERRORS,
        200: {"content": {media: {} for media in MEDIA.values()}},
        307: {"description": "Redirect to a presigned URL (S3 object store)"},
    },
)
def download(
    job_id: str,
    request: Request,
    format: Literal["parquet", "csv"] = Query("parquet"),
    table: str | None = Query(
        None, description="which table of a job fitted to tables joined by keys (required there)"
    ),
):
    """The generated table as Parquet (zstd) or CSV; of a multi-table job, the `table` named."""
    state = api_state(request)
    job = get_job(state.db, job_id)
    outputs, filename = job.outputs, job_id
    if is_related(job):
        names = table_names(job)
        if table not in names:
            given = "is required" if table is None else f"{table!r} is not one of its tables"
            raise FieldError(
                "table",
                f"table {given}: tabular job {job_id} has the tables {', '.join(names)} "
                "(?table=NAME)",
            )
    elif table is not None:
        raise FieldError("table", f"tabular job {job_id} is one table: leave table out")
    require_confirmed(job)
    if job.status != "completed" or not job.outputs:
        raise ConflictError(f"tabular job {job_id} is {job.status}, not completed yet")
    if table is not None:
        outputs, filename = job.outputs["tables"][table], f"{job_id}-{table}"
    return serve_object(
        state.store,
        outputs[format],
        media_type=MEDIA[format],
        filename=f"{filename}.{format}",
        expires_in=3600,
    )
