"""Image set pages: the signed-in person's image sets (an admin's: everyone's), the register form,
and a set's page: its live status (polled while it moves), the real set's profile report (counts,
feature distributions, class balance, sizes, faces, near-duplicates, the plots), the validation
report (quality, fidelity and privacy, each metric with its limit and verdict), the exports and,
for a failed set, retry.

Every page is a client of the JSON endpoints in `api/imagesets.py`: the form goes through
ImageSetBody and the endpoint's `create` (a path on the server's disk needs an admin, as for the
API), the list and a set through `index` and `status` (`_visible`: to anyone but its owner or an
admin a set does not exist), retry through `retry`. The reports and plots are read from the object
store under `imagesets/<id>/` by routes that check the set's owner first; nothing is served from a
public path."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from synth_pipelines.api import imagesets as api
from synth_pipelines.api.common import api_state
from synth_pipelines.core.errors import (
    InvalidInputError,
    NotFoundError,
    ObjectNotFoundError,
    PermissionDeniedError,
)
from synth_pipelines.core.imagesets.features import NUMERIC_FEATURES
from synth_pipelines.core.imagesets.pipeline import set_prefix
from synth_pipelines.core.imagesets.registry import BACKENDS, FORMATS, STAGES
from synth_pipelines.portal.datasets import _number
from synth_pipelines.portal.pages import POLICY, core_errors_as_pages, form_error, redirect, render
from synth_pipelines.portal.sessions import check_csrf, require_principal

router = APIRouter(
    prefix="/portal/imagesets",
    dependencies=[Depends(require_principal), Depends(check_csrf)],
    include_in_schema=False,
)
POLL_SECONDS = 2
MOVING = ("pending", "running")  # a set's page polls while it is in one
PLOTS = ("features", "embeddings", "outliers")  # the profile report's figures (report.py)
CHECKS = ("quality", "fidelity", "privacy")
STATS = ("min", "p5", "p50", "mean", "p95", "max", "std")


def _set(request: Request, set_id: str) -> dict[str, Any]:
    """GET /imagesets/{id}'s answer: 404 to anyone but the set's owner or an admin."""
    with core_errors_as_pages():
        return api.status(set_id, request, require_principal(request))


def _stored_json(request: Request, key: str) -> dict[str, Any] | None:
    """A JSON document of the store, or None until the stage that writes it has run."""
    try:
        return json.loads(api_state(request).store.get_bytes(key))
    except ObjectNotFoundError:
        return None


# --- the reports, as the page shows them ----------------------------------------------------


def limit_of(metric: str, thresholds: dict[str, Any]) -> tuple[str, Any] | None:
    """("at most" | "at least", limit) that a validation report applies to `metric`, read from
    its `thresholds` by the reports' naming: `max_<metric>` / `min_<metric>`, and for a feature's
    metric `<name>.<feature>` the `max_<name>` mapping's entry (or its one value); None for a
    metric measured without a limit."""
    name, _, feature = metric.partition(".")
    for prefix, words in (("max_", "at most"), ("min_", "at least")):
        if feature:
            limit = thresholds.get(prefix + name)
            if isinstance(limit, dict):
                limit = limit.get(feature)
        else:
            limit = thresholds.get(prefix + metric)
        if isinstance(limit, int | float) and not isinstance(limit, bool):
            return words, limit
    return None


def validation_view(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The validation report's checks in order, each with its verdict, every metric (value, limit,
    passed: None where no limit applies), its messages, failing samples with their reasons, what
    was not measured and why, and the thresholds applied."""
    if not report:
        return []
    checks = []
    for name in CHECKS:
        check = report.get(name)
        if check is None:
            continue
        thresholds = check.get("thresholds") or {}
        failed = set(check.get("failed_checks") or [])
        metrics = []
        for metric, value in (check.get("metrics") or {}).items():
            limit = limit_of(metric, thresholds)
            passed = None if limit is None and metric not in failed else metric not in failed
            metrics.append({"name": metric, "value": value, "limit": limit, "passed": passed})
        checks.append(
            {
                **check,
                "metrics": metrics,
                "verdict": "skipped" if check.get("passed") is None
                else "passed" if check["passed"] else "failed",
                "limits": {k: v for k, v in thresholds.items() if not isinstance(v, dict)},
            }
        )  # fmt: skip
    return checks


def profile_view(profile: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the page shows of the profile JSON: the counts, each numeric feature's statistics and
    histogram (bars scaled to the largest bin), and the labels with their share of the set."""
    if not profile:
        return None
    features = []
    for name in (*NUMERIC_FEATURES, "jpeg_quality"):
        stats = (profile.get("jpeg_quality") if name == "jpeg_quality"
                 else (profile.get("features") or {}).get(name)) or {}  # fmt: skip
        histogram = stats.get("histogram") or {"counts": [], "edges": []}
        top = max(histogram["counts"], default=0) or 1
        bars = [round(100 * count / top) for count in histogram["counts"]]
        features.append({"name": name, "count": stats.get("count", 0),
                         "stats": [stats.get(s) for s in STATS], "bars": bars,
                         "histogram": histogram})  # fmt: skip
    labels = profile.get("labels") or {}
    total = sum(labels.values()) + int(profile.get("unlabelled") or 0)
    balance = [{"label": label, "images": count, "share": count / total if total else 0.0}
               for label, count in labels.items()]  # fmt: skip
    return {**profile, "feature_rows": features, "balance": balance}


def _exports(request: Request, row: dict[str, Any]) -> list[dict[str, Any]]:
    """Each published export: its format, prefix and manifest (counts, files)."""
    found = []
    for fmt, prefix in sorted(row["exports"].items()):
        manifest = _stored_json(request, f"{prefix}/manifest.json")
        found.append({"format": fmt, "prefix": prefix, "manifest": manifest})
    return found


def _status_context(request: Request, set_id: str) -> dict[str, Any]:
    row = _set(request, set_id)
    prefix = set_prefix(set_id)
    store = api_state(request).store
    profile = _stored_json(request, f"{prefix}/real/profile.json")
    plots = [name for name in PLOTS if store.exists(f"{prefix}/real/report/{name}.png")]
    return {
        "set": row,
        "moving": row["status"] in MOVING,
        "poll": POLL_SECONDS,
        "stages": STAGES,
        "profile": profile_view(profile),
        "plots": plots,
        "html_report": store.exists(f"{prefix}/real/report/report.html"),
        "validation": validation_view(_stored_json(request, f"{prefix}/validation/report.json")),
        "exports": _exports(request, row) if row["status"] == "ready" else [],
        "stats": STATS,
    }


# --- the list and the register form --------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def set_list(request: Request) -> HTMLResponse:
    who = require_principal(request)
    sets = api.index(request, who)
    return render(request, "imagesets/list.html", {"sets": sets, "me": who})


def _new_context(request: Request, form: FormData | None = None, **extra: Any) -> dict[str, Any]:
    images = api_state(request).settings.images
    values = {k: str(v) for k, v in (form or {}).items() if isinstance(v, str)}
    chosen = form.getlist("formats") if form is not None else []
    return {
        "values": values,
        "chosen": [str(f) for f in chosen],
        "backends": BACKENDS,
        "formats": FORMATS,
        "defaults": {"backend": images.backend, "count": images.count,
                     "formats": list(images.formats), "truncation": images.truncation},
        "error": None,
        "field": None,
        **extra,
    }  # fmt: skip


@router.get("/new", response_class=HTMLResponse)
def new_form(request: Request) -> HTMLResponse:
    return render(request, "imagesets/new.html", _new_context(request))


def register_body(form: FormData) -> dict[str, Any]:
    """The form in POST /imagesets' JSON shape: empty fields left out (the endpoint's defaults),
    numbers as JSON would carry them, anything else as typed for the body model to refuse."""
    body: dict[str, Any] = {"source": str(form.get("source", "")).strip()}
    for name in ("name", "backend"):
        if str(form.get(name, "")).strip():
            body[name] = str(form.get(name)).strip()
    for name in ("count", "seed"):
        if str(form.get(name, "")).strip():
            body[name] = _number(str(form.get(name)))
    text = str(form.get("truncation", "")).strip()
    if text:
        try:
            body["truncation"] = float(text)
        except ValueError:
            body["truncation"] = text
    formats = [str(f) for f in form.getlist("formats")]
    if formats:
        body["formats"] = formats
    return body


@router.post("/new", response_model=None)
async def create(request: Request) -> HTMLResponse | RedirectResponse:
    """POST /imagesets: ImageSetBody, then the endpoint itself (an owner may give an s3://
    prefix; a path on the server's disk needs an admin: a 403 beside the source)."""
    form = await request.form()
    try:
        body = api.ImageSetBody.model_validate(register_body(form))
        row = await api.create(body, request, require_principal(request))
    except (InvalidInputError, ValidationError) as exc:
        message, field = form_error(exc)
        if field is None and message.split(" ", 1)[0] in api.ImageSetBody.model_fields:
            field = message.split(" ", 1)[0]  # the registry's messages start with their field
        if field and field.startswith("formats."):
            field = "formats"  # one format of the list: the message names which
        context = _new_context(request, form, error=message, field=field)
        return render(request, "imagesets/new.html", context, status=422)
    except PermissionDeniedError as exc:
        context = _new_context(request, form, error=str(exc), field="source")
        return render(request, "imagesets/new.html", context, status=403)
    return redirect(request, f"/portal/imagesets/{row['id']}")


# --- a set's page ---------------------------------------------------------------------------


@router.get("/{set_id}", response_class=HTMLResponse)
def set_page(request: Request, set_id: str) -> HTMLResponse:
    return render(request, "imagesets/set.html", _status_context(request, set_id))


@router.get("/{set_id}/status", response_class=HTMLResponse)
def status_panel(request: Request, set_id: str) -> HTMLResponse:
    """The status and reports alone: what the page's htmx polling swaps in."""
    return render(request, "imagesets/_status.html", _status_context(request, set_id))


@router.post("/{set_id}/retry", response_model=None)
async def retry(request: Request, set_id: str) -> RedirectResponse:
    """POST /imagesets/{id}/retry: a failed set queued again (409 page otherwise)."""
    with core_errors_as_pages():
        await run_in_threadpool(api.retry, set_id, request, require_principal(request))
    return redirect(request, f"/portal/imagesets/{set_id}")


def _object(request: Request, set_id: str, key: str, media_type: str, **headers: str) -> Response:
    """An object of the set's, after the owner check; 404 page when the stage has not written it."""
    _set(request, set_id)
    try:
        data = api_state(request).store.get_bytes(key)
    except ObjectNotFoundError:
        with core_errors_as_pages():
            raise NotFoundError(f"image set {set_id} has no {key.rsplit('/', 1)[-1]} yet") from None
    headers = {**POLICY, "Cache-Control": "private, no-store", **headers}
    return Response(data, media_type=media_type, headers=headers)


@router.get("/{set_id}/profile/{name}.png")
def profile_plot(request: Request, set_id: str, name: str) -> Response:
    """One figure of the profile report (features, embeddings, outliers: the outliers are
    thumbnails of the real images, so only the set's owner and admins get it)."""
    if name not in PLOTS:
        with core_errors_as_pages():
            raise NotFoundError(f"no plot {name!r}: one of {', '.join(PLOTS)}")
    return _object(request, set_id, f"{set_prefix(set_id)}/real/report/{name}.png", "image/png")


@router.get("/{set_id}/profile/report.html")
def profile_report(request: Request, set_id: str) -> Response:
    """The profile's HTML report as written by `report.write_report`; its figures load from the
    routes beside it (relative paths). Its one inline style block is allowed, nothing else."""
    key = f"{set_prefix(set_id)}/real/report/report.html"
    policy = {"Content-Security-Policy": "default-src 'none'; img-src 'self'; "
              "style-src 'unsafe-inline'; frame-ancestors 'none'"}  # fmt: skip
    return _object(request, set_id, key, "text/html; charset=utf-8", **policy)


@router.get("/{set_id}/exports/{fmt}/manifest.json")
def export_manifest(request: Request, set_id: str, fmt: str) -> Response:
    """An export's manifest (counts, labels, files with their sha256) of a ready set."""
    row = _set(request, set_id)
    prefix = row["exports"].get(fmt)
    if prefix is None:
        with core_errors_as_pages():
            raise NotFoundError(f"image set {set_id} has no {fmt!r} export")
    return _object(request, set_id, f"{prefix}/manifest.json", "application/json")
