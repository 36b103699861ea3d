"""Admin endpoints behind a bearer token (SYNTH_ADMIN_TOKEN): metrics and system status."""

from __future__ import annotations

import hmac
from typing import Any, Protocol

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import func, select

from synth_pipelines.api.schemas import ErrorBody
from synth_pipelines.core.clock import aware
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
    with db.session() as session:
        done = session.execute(
            select(DatasetRequest.created_at, DatasetRequest.completed_at).where(
                DatasetRequest.completed_at.is_not(None)
            )
        ).all()
        downloads = session.scalar(select(func.coalesce(func.sum(DatasetRequest.downloads), 0)))
    seconds = [(aware(end) - aware(start)).total_seconds() for start, end in done]
    refills: dict[str, Any]
    try:
        busy = _orchestrator(state).refills_in_flight()
        refills = {"count": len(busy), "buckets": busy}
    except Exception as exc:  # the metric is optional; say why it is missing
        refills = {"count": None, "error": f"{exc.__class__.__name__}: {exc}"}

    def percentile(q: int) -> float | None:
        return round(float(np.percentile(seconds, q)), 3) if seconds else None

    return {
        "requests": {
            status: counts.get(status, 0)
            for status in ("pending", "packaging", "backordered", "ready", "failed", "expired")
        },
        "pending_jobs": counts.get("pending", 0) + counts.get("packaging", 0),
        "completed_jobs": len(seconds),
        "backordered": counts.get("backordered", 0),
        "avg_completion_seconds": round(float(np.mean(seconds)), 3) if seconds else None,
        "p50_completion_seconds": percentile(50),
        "p95_completion_seconds": percentile(95),
        "total_downloads": int(downloads or 0),
        "inventory": inventory_levels(db),
        "inventory_targets": dict(state.settings.faces.targets),
        "refill_runs_in_flight": refills,
    }


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
