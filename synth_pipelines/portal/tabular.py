"""Tabular pages: a job from a prompt (its draft schema as an editable table, then confirmed
with a row count) or fitted to an uploaded sample (its inferred schema shown for confirmation);
the job's live progress, the first rows, downloads, and a fitted job's quality and privacy
report; the signed-in person's jobs (an admin's: everyone's).

Every form goes through what the JSON endpoint runs: the prompt through DraftBody and
`draft_job`, the schema through TableSchema.parse and `update_schema` (PUT .../schema), the row
count through ConfirmBody and `confirm_draft`, an upload through `fit_uploads`, under the same
size limit (SAMPLE_LIMIT, refused unread)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from synth_pipelines.api import tabular as api
from synth_pipelines.api.body_limits import body_limit
from synth_pipelines.api.common import api_state, serve_object
from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.errors import FieldError, InvalidInputError, NotFoundError, SynthError
from synth_pipelines.core.storage.models import TabularJob
from synth_pipelines.core.tabular.fitted.privacy import PrivacyThresholds
from synth_pipelines.core.tabular.jobs import (
    progress,
    retry_job,
    update_schema,
    visible_job,
    visible_jobs,
)
from synth_pipelines.core.tabular.preview import previews
from synth_pipelines.core.tabular.schema import COLUMN_TYPES, NUMERIC, TableSchema
from synth_pipelines.portal.pages import form_error, redirect, render
from synth_pipelines.portal.sessions import PortalError, check_csrf, require_principal

router = APIRouter(
    prefix="/portal/tabular",
    dependencies=[Depends(require_principal), Depends(check_csrf)],
    include_in_schema=False,
)
body_limit("POST", "/portal/tabular/fitted", api.SAMPLE_LIMIT)
# Statuses a job leaves on its own: its page keeps polling while it is in one.
MOVING = ("confirmed", "running")
EDITED = ("name", "type", "min", "max", "categories", "nullable")


def _status_code(exc: SynthError) -> int:
    from synth_pipelines.api.app import STATUS_FOR_ERROR

    return next((code for kind, code in STATUS_FOR_ERROR if isinstance(exc, kind)), 500)


def _job(request: Request, job_id: str) -> TabularJob:
    """The job if the signed-in person may see it (404 page otherwise, as for a persona)."""
    try:
        return visible_job(api_state(request).db, require_principal(request), job_id)
    except NotFoundError as exc:
        raise PortalError(404, str(exc)) from None


# --- the job list and the two ways to start one ---------------------------------------------


@router.get("", response_class=HTMLResponse)
def job_list(request: Request) -> HTMLResponse:
    who = require_principal(request)
    jobs = visible_jobs(api_state(request).db, who)
    rows = [(job, progress(job)) for job in jobs]
    return render(request, "tabular/list.html", {"jobs": rows, "all": who.is_admin})


@router.get("/new", response_class=HTMLResponse)
def prompt_form(request: Request) -> HTMLResponse:
    return render(request, "tabular/new.html", {"prompt": "", "error": None, "field": None})


@router.post("/new", response_model=None)
async def create_from_prompt(request: Request) -> HTMLResponse | RedirectResponse:
    form = await request.form()
    prompt = str(form.get("prompt", ""))
    try:
        body = api.DraftBody.model_validate({"prompt": prompt})
        job = await api.draft_job(api_state(request), body.prompt, require_principal(request).user)
    except (InvalidInputError, ValidationError) as exc:
        message, field = form_error(exc)
        context = {"prompt": prompt, "error": message, "field": field}
        return render(request, "tabular/new.html", context, status=422)
    except SynthError as exc:  # the LLM drafter unavailable or failing: its status, its words
        context = {"prompt": prompt, "error": str(exc), "field": None}
        return render(request, "tabular/new.html", context, status=_status_code(exc))
    return redirect(request, f"/portal/tabular/{job.id}")


def _fitted_context(request: Request, form: FormData | None = None, **extra: Any):
    values = {key: str(value) for key, value in (form or {}).items() if isinstance(value, str)}
    limit = api.SAMPLE_LIMIT.limit(api_state(request).settings)
    return {"values": values, "limit": limit, "setting": api.SAMPLE_LIMIT.setting,
            "error": None, "field": None, **extra}  # fmt: skip


@router.get("/fitted", response_class=HTMLResponse)
def fitted_form(request: Request) -> HTMLResponse:
    return render(request, "tabular/fitted.html", _fitted_context(request))


@router.post("/fitted", response_model=None)
async def create_fitted(request: Request) -> HTMLResponse | RedirectResponse:
    """The sample(s) as POST /tabular/jobs' multipart path reads them: each file read up to the
    limit (one byte more, for the use case to name the limit), `rows` and `seed` as integers,
    `key` lines (child.column=parent.column) for tables joined by keys."""
    form = await request.form()
    state = api_state(request)
    limit = state.settings.tabular.sample_max_bytes
    try:
        uploads = [u for u in form.getlist("file") if isinstance(u, UploadFile) and u.filename]
        if not uploads:
            raise FieldError("file", "file is required: the sample, as CSV or Parquet")
        if len(uploads) > api.MAX_TABLES:
            raise FieldError("file", f"at most {api.MAX_TABLES} files (one per table)")
        keys = [line.strip() for line in str(form.get("keys", "")).splitlines() if line.strip()]
        rows, seed = api.form_integer(form, "rows"), api.form_integer(form, "seed") or 0
        files = [(await u.read(limit + 1), u.filename or "sample.csv") for u in uploads]
        job = await api.fit_uploads(state, require_principal(request), files, keys, rows, seed)
    except InvalidInputError as exc:
        message, field = form_error(exc)
        context = _fitted_context(request, form, error=message, field=field)
        return render(request, "tabular/fitted.html", context, status=422)
    except SynthError as exc:  # no master key (503), …: the API's status and words
        context = _fitted_context(request, form, error=str(exc), field=None)
        return render(request, "tabular/fitted.html", context, status=_status_code(exc))
    return redirect(request, f"/portal/tabular/{job.id}")


# --- a job's page: the draft's schema, then its progress and results --------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _editor_rows(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The schema's columns as the editor's rows of text, plus a blank row to add a column."""
    rows = [
        {
            "name": column["name"],
            "type": column["type"],
            "min": _text(column.get("min")),
            "max": _text(column.get("max")),
            "categories": ", ".join(column.get("categories") or []),
            "nullable": _text(column.get("nullable", 0.0)),
            "semantic_type": column.get("semantic_type") or "",
            "remove": False,
        }
        for column in schema["columns"]
    ]
    return [*rows, {"name": "", "type": "string", "min": "", "max": "", "categories": "",
                    "nullable": "", "semantic_type": "", "remove": False}]  # fmt: skip


def _number(text: str) -> int | float | str:
    """A form's number as JSON would carry it; anything else as typed, for the schema to refuse
    in the API's words."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def schema_from_form(stored: dict[str, Any], form: FormData) -> tuple[dict[str, Any], list[int]]:
    """The PUT .../schema body the editor's form stands for: the stored schema with each row's
    name, type, range, categories and null share as typed (every other attribute of a column
    kept; weights dropped when its categories change), rows marked "remove" left out, and the
    blank last row added when named. Also each body column's row in the form, to put a message
    about `columns.<i>` beside its row."""
    stored_columns = stored["columns"]
    columns, rows = [], []
    for index in range(len(stored_columns) + 1):

        def field(name: str, index: int = index) -> str:
            return str(form.get(f"col-{index}-{name}", "")).strip()

        new = index == len(stored_columns)
        if form.get(f"col-{index}-remove") == "on" or (new and not field("name")):
            continue
        column = {} if new else dict(stored_columns[index])
        column["name"] = field("name")
        column["type"] = field("type") or "string"
        numeric = column["type"] in NUMERIC
        for bound in ("min", "max"):
            text = field(bound)
            column.pop(bound, None)
            if text:
                column[bound] = _number(text) if numeric else text
        categories = [part.strip() for part in field("categories").split(",") if part.strip()]
        if categories != column.get("categories"):
            column.pop("weights", None)
        column.pop("categories", None)
        if categories:
            column["categories"] = categories
        column["nullable"] = _number(field("nullable")) if field("nullable") else 0.0
        columns.append(column)
        rows.append(index)
    return {**stored, "columns": columns}, rows


def _submitted_rows(stored: dict[str, Any], form: FormData) -> list[dict[str, Any]]:
    """The editor's rows as they were sent: a refused form keeps what was typed."""
    rows = []
    for index, original in enumerate(_editor_rows(stored)):
        rows.append(
            {
                **{name: str(form.get(f"col-{index}-{name}", "")) for name in EDITED},
                "semantic_type": original["semantic_type"],
                "remove": form.get(f"col-{index}-remove") == "on",
            }
        )
    return rows


def _error_place(
    field: str | None, editor: list[dict[str, Any]], body_rows: list[int]
) -> dict[str, Any]:
    """Where a `columns.<name or index>[.attr]` message goes: beside its editor row
    (`error_row`), on the cell it names (`error_attr`; the name's for a whole-column one)."""
    parts = (field or "").split(".")
    row = None
    if len(parts) >= 2 and parts[0] == "columns":
        row = next((i for i, r in enumerate(editor) if r["name"].strip() == parts[1]), None)
        if row is None and parts[1].isdigit() and int(parts[1]) < len(body_rows):
            row = body_rows[int(parts[1])]
    attr = parts[2] if row is not None and len(parts) > 2 and parts[2] in EDITED else "name"
    return {"error_row": row, "error_attr": attr}


def _report_sets(reports: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A fitted job's reports, one per table (table None for a one-table job), each with its
    blocking checks."""
    by_table: dict[str | None, dict[str, Any]] = {}
    if reports and "privacy" in reports:
        by_table = {None: reports}
    elif reports and "tables" in reports:
        by_table = {name: found for name, found in reports["tables"].items() if "privacy" in found}
    return [
        {"table": name, "reports": found, "checks": _checks(found), "stored": "report" in found}
        for name, found in by_table.items()
    ]


def _checks(reports: dict[str, Any]) -> list[dict[str, Any]]:
    """The blocking privacy checks of one table's report: value, limit, passed."""
    privacy = reports["privacy"]
    limits = PrivacyThresholds(**reports.get("thresholds", {}))
    checks = [
        ("DCR share (rows closer to the training sample than to the holdout)",
         privacy["dcr_share"], limits.dcr_share_max),
        ("Rows identical to a training row", privacy["identical_match_share"],
         limits.identical_match_max),
    ]  # fmt: skip
    found = [
        {"name": name, "value": value, "limit": limit, "at_most": True,
         "passed": limit is None or value is None or value <= limit}
        for name, value, limit in checks
    ]  # fmt: skip
    if limits.nndr_p5_min is not None:
        p5 = (privacy.get("nndr") or {}).get("p5")
        passed = p5 is None or p5 >= limits.nndr_p5_min
        found.append({"name": "5th-percentile NNDR", "value": p5, "limit": limits.nndr_p5_min,
                      "at_most": False, "passed": passed})  # fmt: skip
    return found


def _status_context(request: Request, job: TabularJob) -> dict[str, Any]:
    view = api.job_view(job, request)
    params = job.params or {}
    total_rows = params.get("total_rows") or 0
    done = view.rows_generated - view.rows_deduplicated
    rows_done = total_rows if view.status == "completed" else max(0, min(done, total_rows))
    seconds_left = None
    if view.estimated_completion is not None:
        seconds_left = max(0, round((view.estimated_completion - utcnow()).total_seconds()))
    tables = None
    if view.status == "completed":
        tables = previews(api_state(request).store, job)
    return {
        "job": job,
        "view": view,
        "moving": view.status in MOVING,
        "run_rows": total_rows,
        "rows_done": rows_done,
        "seconds_left": seconds_left,
        "previews": tables,
        "report_sets": _report_sets(view.reports),
    }


def _described(job: TabularJob) -> dict[str, list[tuple[str, str, str, list[str]]]]:
    """Each table's columns as (name, type, semantic type, constraints in short words): the
    schema read-only, as the CLI shows it (every table of a job fitted to several)."""
    schemas = {"": job.schema_json}
    if job.tables is not None:
        fitted = job.tables["fitted"]
        schemas = {name: fitted["tables"][name] for name in fitted["order"]}
    described = {}
    for name, raw in schemas.items():
        schema = TableSchema.model_validate(raw)
        described[name] = [(c.name, c.type, c.semantic_type or "", c.constraint_labels())
                           for c in schema.columns]  # fmt: skip
    return described


def _page(request: Request, job: TabularJob, status: int = 200, **extra: Any) -> HTMLResponse:
    schema = job.schema_json
    editable = job.status == "draft" and job.drafter != "fitted" and job.tables is None
    context = {
        "schema": schema,
        "editable": editable,
        "types": COLUMN_TYPES,
        "rows": _editor_rows(schema),
        "described": _described(job),
        "total_rows": "" if schema.get("rows") is None else str(schema["rows"]),
        "error": None,
        "field": None,
        "error_row": None,
        "error_attr": None,
        **_status_context(request, job),
        **extra,
    }
    return render(request, "tabular/job.html", context, status=status)


@router.get("/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str) -> HTMLResponse:
    return _page(request, _job(request, job_id))


@router.get("/{job_id}/status", response_class=HTMLResponse)
def job_status_panel(request: Request, job_id: str) -> HTMLResponse:
    """The status panel alone: what the page's htmx polling swaps in."""
    return render(request, "tabular/_status.html", _status_context(request, _job(request, job_id)))


@router.post("/{job_id}/schema", response_model=None)
async def save_schema(request: Request, job_id: str) -> HTMLResponse | RedirectResponse:
    """PUT /tabular/jobs/{id}/schema from the editor: TableSchema.parse, then update_schema."""
    job = _job(request, job_id)
    form = await request.form()
    body, body_rows = schema_from_form(job.schema_json, form)
    try:
        schema = TableSchema.parse(body)
        await run_in_threadpool(update_schema, api_state(request).db, job_id, schema)
    except InvalidInputError as exc:
        message, field = form_error(exc)
        editor = _submitted_rows(job.schema_json, form)
        return _page(request, job, 422, rows=editor, error=message, field=field,
                     **_error_place(field, editor, body_rows))  # fmt: skip
    except SynthError as exc:  # confirmed meanwhile (409), …
        raise PortalError(_status_code(exc), str(exc)) from None
    return redirect(request, f"/portal/tabular/{job_id}")


@router.post("/{job_id}/confirm", response_model=None)
async def confirm(request: Request, job_id: str) -> HTMLResponse | RedirectResponse:
    """POST /tabular/jobs/{id}/confirm with the form's row count (empty: the draft's)."""
    job = _job(request, job_id)
    form = await request.form()
    text = str(form.get("total_rows", "")).strip()
    raw = {"total_rows": _number(text) if text.lstrip("-").isdigit() else text} if text else {}
    try:
        body = api.ConfirmBody.model_validate(raw)
        await run_in_threadpool(api.confirm_draft, api_state(request), job_id, body)
    except (InvalidInputError, ValidationError) as exc:
        message, field = form_error(exc)
        editor = _editor_rows(job.schema_json)
        return _page(request, job, 422, total_rows=text, error=message, field=field,
                     **_error_place(field, editor, list(range(len(editor)))))  # fmt: skip
    except SynthError as exc:
        raise PortalError(_status_code(exc), str(exc)) from None
    return redirect(request, f"/portal/tabular/{job_id}")


@router.post("/{job_id}/retry", response_model=None)
async def retry(request: Request, job_id: str) -> RedirectResponse:
    _job(request, job_id)
    try:
        await run_in_threadpool(retry_job, api_state(request).db, job_id)
    except SynthError as exc:
        raise PortalError(_status_code(exc), str(exc)) from None
    return redirect(request, f"/portal/tabular/{job_id}")


@router.get("/{job_id}/download", response_model=None)
def download(
    request: Request,
    job_id: str,
    format: Literal["parquet", "csv"] = Query("parquet"),
    table: str | None = Query(None),
) -> Response:
    """GET /tabular/jobs/{id}/download, for the person who may see the job."""
    _job(request, job_id)
    return api.download(job_id, request, format=format, table=table)


@router.get("/{job_id}/report", response_model=None)
def report(request: Request, job_id: str, table: str | None = Query(None)) -> Response:
    """A fitted job's HTML quality and privacy report (`table`'s, of a multi-table job), as
    stored beside its table."""
    job = _job(request, job_id)
    found = next((s for s in _report_sets(job.reports) if s["table"] == table), None)
    key = found["reports"].get("report") if found else None
    store = api_state(request).store
    if not key or not store.exists(key):
        which = f" for table {table!r}" if table else ""
        raise PortalError(404, f"tabular job {job_id} has no HTML report{which}")
    name = f"{job_id}-{table}-report.html" if table else f"{job_id}-report.html"
    return serve_object(store, key, media_type="text/html", filename=name, expires_in=3600)
