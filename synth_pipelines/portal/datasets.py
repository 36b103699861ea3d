"""Dataset pages: the request form, the bulk (CSV) form, and a request's live status page with
its one-time download link. Each form is read into the JSON body's shape and goes through the
same model, spec and use case as POST /datasets."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from synth_pipelines.api.common import api_state
from synth_pipelines.api.datasets import download_link, issue_download_code, status_view
from synth_pipelines.api.schemas import DatasetRequestBody
from synth_pipelines.core.delivery.requests import get_request
from synth_pipelines.core.delivery.spec import (
    FORMATS,
    IMAGE_SIZE_RANGE,
    DatasetSpec,
    SpecError,
    buckets_from_csv,
)
from synth_pipelines.core.errors import InvalidInputError, NotFoundError
from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS
from synth_pipelines.portal.pages import form_error, redirect, render, root
from synth_pipelines.portal.sessions import (
    PortalError,
    check_csrf,
    require_principal,
    set_cookie,
    signer,
)

router = APIRouter(
    prefix="/portal/datasets",
    dependencies=[Depends(require_principal), Depends(check_csrf)],
    include_in_schema=False,
)
LINK_COOKIE = "synth_link"  # the new request's download link, for its page to show once
LINK_SECONDS = 600
BULK_CSV_MAX_BYTES = 1024 * 1024
# Statuses a request can still leave on its own: its page keeps polling while it is in one.
MOVING = ("pending", "packaging", "backordered")


def _number(text: str) -> int | str:
    """A form's digits as the integer JSON would carry; anything else as given, for the body
    model to refuse in the API's words."""
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _options(form: FormData) -> dict[str, Any]:
    """format, image_size and exclusive of a form, in the JSON body's types."""
    return {
        "format": str(form.get("format", "zip")),
        "image_size": _number(str(form.get("image_size", "256"))),
        "exclusive": form.get("exclusive") == "on",
    }


def _form_context(form: FormData | None = None, **extra: Any) -> dict[str, Any]:
    values = {key: str(value) for key, value in (form or {}).items() if isinstance(value, str)}
    return {
        "buckets": ALL_BUCKET_KEYS,
        "formats": FORMATS,
        "size_range": IMAGE_SIZE_RANGE,
        "values": values,
        "exclusive": form is None or form.get("exclusive") == "on",
        "error": None,
        "field": None,
        **extra,
    }


def _spec(request: Request, raw: dict[str, Any]) -> DatasetSpec:
    """POST /datasets' checks: the body model, then the spec (ValidationError, SpecError)."""
    body = DatasetRequestBody.model_validate(raw)
    return DatasetSpec.parse(body.model_dump(), api_state(request).settings.datasets.max_size)


def _request_body(form: FormData) -> dict[str, Any]:
    """The request form as POST /datasets' JSON body (empty and 0 counts left out)."""
    buckets = {
        key: _number(value)
        for key in ALL_BUCKET_KEYS
        if (value := str(form.get(f"bucket:{key}", "")).strip()) not in ("", "0")
    }
    return {"buckets": buckets, **_options(form)}


async def _submit(request: Request, raw: dict[str, Any]):
    """POST /datasets' path: the body model, the spec, a new request and its link."""
    spec = _spec(request, raw)
    row, code = await run_in_threadpool(issue_download_code, api_state(request).db, spec)
    response = redirect(request, f"/portal/datasets/{row.id}")
    link = signer(request).dumps(
        "link", {"id": row.id, "url": download_link(request, row.id, code)}
    )
    set_cookie(request, response, LINK_COOKIE, link, max_age=LINK_SECONDS,
               path=f"{root(request)}/portal/datasets/{row.id}")  # fmt: skip
    return response


@router.get("/new", response_class=HTMLResponse)
def request_form(request: Request) -> HTMLResponse:
    return render(request, "datasets/request.html", _form_context())


@router.post("/new", response_model=None)
async def request_dataset(request: Request) -> HTMLResponse | RedirectResponse:
    form = await request.form()
    try:
        return await _submit(request, _request_body(form))
    except (InvalidInputError, ValidationError) as exc:
        message, field = form_error(exc)
        context = _form_context(form, error=message, field=field)
        return render(request, "datasets/request.html", context, status=422)


@router.post("/new/check", response_class=HTMLResponse)
async def check_request(request: Request) -> HTMLResponse:
    """The request form checked as the user types (htmx): the API's message for the form as it
    stands, or what it would ask for. Nothing is stored; always a 200 so htmx swaps it in."""
    form = await request.form()
    try:
        spec = _spec(request, _request_body(form))
    except (InvalidInputError, ValidationError) as exc:
        message, field = form_error(exc)
        return render(request, "datasets/_check.html", {"error": message, "field": field})
    return render(request, "datasets/_check.html", {"error": None, "spec": spec})


@router.get("/bulk", response_class=HTMLResponse)
def bulk_form(request: Request) -> HTMLResponse:
    return render(request, "datasets/bulk.html", _form_context())


@router.post("/bulk", response_model=None)
async def bulk_request(request: Request) -> HTMLResponse | RedirectResponse:
    form = await request.form()
    upload = form.get("csv")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise SpecError("csv", "choose a CSV file of 'bucket,count' lines")
        data = await upload.read(BULK_CSV_MAX_BYTES + 1)
        if len(data) > BULK_CSV_MAX_BYTES:
            raise SpecError("csv", f"the CSV is over {BULK_CSV_MAX_BYTES:,} bytes")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SpecError("csv", "the CSV is not UTF-8 text") from None
        return await _submit(request, {"buckets": buckets_from_csv(text), **_options(form)})
    except (InvalidInputError, ValidationError) as exc:
        message, field = form_error(exc)
        context = _form_context(form, error=message, field=field)
        return render(request, "datasets/bulk.html", context, status=422)


@router.get("/find", response_model=None)
def find_request(request: Request, id: str = "") -> RedirectResponse:
    """The home page's "open a request by id" form (a GET: nothing changes)."""
    if not id.strip():
        raise PortalError(422, "enter a request id")
    return redirect(request, f"/portal/datasets/{quote(id.strip(), safe='')}")


def _status_context(request: Request, request_id: str) -> dict[str, Any]:
    try:
        row = get_request(api_state(request).db, request_id)
    except NotFoundError as exc:
        raise PortalError(404, str(exc)) from None
    status = status_view(row)
    return {"status": status, "moving": status.status in MOVING}


@router.get("/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, request_id: str) -> HTMLResponse:
    context = _status_context(request, request_id)
    shown = signer(request).loads("link", request.cookies.get(LINK_COOKIE), LINK_SECONDS)
    link = shown["url"] if isinstance(shown, dict) and shown.get("id") == request_id else None
    response = render(request, "datasets/status.html", {**context, "link": link})
    if link:  # shown once: the cookie goes with this page
        response.delete_cookie(LINK_COOKIE, path=f"{root(request)}/portal/datasets/{request_id}")
    return response


@router.get("/{request_id}/status", response_class=HTMLResponse)
def request_status_panel(request: Request, request_id: str) -> HTMLResponse:
    """The status panel alone: what the page's htmx polling swaps in."""
    return render(request, "datasets/_status.html", _status_context(request, request_id))
