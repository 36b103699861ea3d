"""Admin endpoints behind a bearer token (SYNTH_ADMIN_TOKEN): metrics and system status."""

from __future__ import annotations

import hmac
from typing import Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import func, select

from synth_pipelines.api.schemas import ErrorBody
from synth_pipelines.core.delivery.requests import request_counts
from synth_pipelines.core.errors import SynthError
from synth_pipelines.core.faces.inventory import inventory_levels
from synth_pipelines.core.storage.models import DatasetRequest

bearer = HTTPBearer(auto_error=False)


def require_admin(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> None:
    """401 without a bearer token, 403 with a wrong one; compared in constant time."""
    expected = request.app.state.synth.admin_token
    if not expected:
        raise HTTPException(503, "admin token not configured: set SYNTH_ADMIN_TOKEN to use /admin")
    if credentials is None:
        raise HTTPException(401, "admin token required", {"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise HTTPException(403, "wrong admin token")


router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={code: {"model": ErrorBody} for code in (401, 403, 503)},
)


class Orchestrator(Protocol):
    """The orchestrator's side of the admin endpoints (`synth_pipelines.dagster_status`)."""

    def refills_in_flight(self) -> list[str]: ...

    def describe(self) -> dict[str, Any]: ...


def _orchestrator(state) -> Orchestrator:
    orchestrator = state.orchestrator
    if orchestrator is None:
        raise SynthError(
            "no orchestrator wired into this API: `synth serve` reads Dagster's instance "
            "(DAGSTER_HOME); create_app(orchestrator=...) does it in code"
        )
    return orchestrator


def dataset_metrics(state) -> dict[str, Any]:
    """Request counts, completion times, downloads, inventory levels against their targets,
    refills in flight: what /admin/metrics answers and the portal's dashboard shows."""
    db = state.db
    counts = request_counts(db)
    with db.session(read_only=True) as session:
        completion = completion_summary(session)
    refills: dict[str, Any]
    try:
        busy = _orchestrator(state).refills_in_flight()
        refills = {"count": len(busy), "buckets": busy}
    except Exception as exc:  # the metric is optional; say why it is missing
        refills = {"count": None, "error": f"{exc.__class__.__name__}: {exc}"}

    def seconds(key: str) -> float | None:
        return None if completion[key] is None else round(completion[key], 3)

    return {
        "requests": {
            status: counts.get(status, 0)
            for status in ("pending", "packaging", "backordered", "ready", "failed", "expired")
        },
        "pending_jobs": counts.get("pending", 0) + counts.get("packaging", 0),
        "completed_jobs": completion["count"],
        "backordered": counts.get("backordered", 0),
        "avg_completion_seconds": seconds("mean"),
        "p50_completion_seconds": seconds("p50"),
        "p95_completion_seconds": seconds("p95"),
        "total_downloads": completion["downloads"],
        "inventory": inventory_levels(db),
        "inventory_targets": dict(state.settings.faces.targets),
        "refill_runs_in_flight": refills,
    }


def completion_summary(session, percents: tuple[int, ...] = (50, 95)) -> dict[str, Any]:
    """{count, mean, p<q>...} of the seconds from request to ready, and the downloads in all,
    read from the index on (ready_seconds, downloads) (a request is downloaded only once it is
    ready): the dashboard's cost does not grow with the history of requests. Percentiles are
    interpolated as numpy's default does, between the two rows around each rank."""
    ready = DatasetRequest.ready_seconds
    done = ready.is_not(None)
    count, mean, downloads = session.execute(
        select(func.count(ready), func.avg(ready), func.sum(DatasetRequest.downloads)).where(done)
    ).one()
    summary: dict[str, Any] = {
        "count": count,
        "mean": None if mean is None else float(mean),
        "downloads": int(downloads or 0),
    }
    for q in percents:
        summary[f"p{q}"] = None
        if count:
            rank = (count - 1) * q / 100
            low = int(rank)
            query = select(ready).where(done).order_by(ready).offset(low).limit(2)
            values = [float(v) for v in session.scalars(query)]
            summary[f"p{q}"] = values[0] + (values[-1] - values[0]) * (rank - low)
    return summary


def _check(probe) -> dict[str, Any]:
    try:
        detail = probe()
        return {"ok": True, **(detail or {})}
    except Exception as exc:  # reported, not raised: this endpoint says what is down
        return {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}


def system_health(state) -> dict[str, Any]:
    """Database, object store, and the orchestrator (Dagster: each sensor's last tick), each
    with ok and its detail or the error."""

    def database():
        state.db.check()
        return {"url": state.db.describe()}

    def store():
        state.store.check()
        return {"store": state.store.describe()}

    def dagster():
        return _orchestrator(state).describe()

    return {"database": _check(database), "object_store": _check(store), "dagster": _check(dagster)}


@router.get("/metrics")
def metrics(request: Request) -> dict[str, Any]:
    """Request counts, completion times, downloads, inventory levels, refills in flight."""
    return dataset_metrics(request.app.state.synth)


@router.get("/system-status")
def system_status(request: Request) -> dict[str, Any]:
    """Database, object store, and the orchestrator (Dagster: each sensor's last tick)."""
    return system_health(request.app.state.synth)
