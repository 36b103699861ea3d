"""Admin endpoints behind a bearer token (SYNTH_ADMIN_TOKEN): metrics and system status."""

from __future__ import annotations

import hmac
import os
from typing import Any

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


def _dagster_instance():
    import dagster as dg

    if not os.environ.get("DAGSTER_HOME"):
        raise SynthError("DAGSTER_HOME is not set")
    return dg.DagsterInstance.get()


@router.get("/metrics")
def metrics(request: Request) -> dict[str, Any]:
    """Request counts, completion times, downloads, inventory levels, refills in flight."""
    db = request.app.state.synth.db
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
        from synth_pipelines.lines.faces.sensors import buckets_in_flight

        with _dagster_instance() as instance:
            busy = sorted(buckets_in_flight(instance))
        refills = {"count": len(busy), "buckets": busy}
    except Exception as exc:  # the metric is optional; say why it is missing
        refills = {"count": None, "error": f"{exc.__class__.__name__}: {exc}"}
    return {
        "requests": {
            status: counts.get(status, 0)
            for status in ("pending", "packaging", "backordered", "ready", "failed", "expired")
        },
        "pending_jobs": counts.get("pending", 0) + counts.get("packaging", 0),
        "completed_jobs": len(seconds),
        "backordered": counts.get("backordered", 0),
        "avg_completion_seconds": round(float(np.mean(seconds)), 3) if seconds else None,
        "p95_completion_seconds": round(float(np.percentile(seconds, 95)), 3) if seconds else None,
        "total_downloads": int(downloads or 0),
        "inventory": inventory_levels(db),
        "refill_runs_in_flight": refills,
    }


def _check(probe) -> dict[str, Any]:
    try:
        detail = probe()
        return {"ok": True, **(detail or {})}
    except Exception as exc:  # reported, not raised: this endpoint says what is down
        return {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}


@router.get("/system-status")
def system_status(request: Request) -> dict[str, Any]:
    """Database, object store, Dagster instance and each sensor's last tick."""
    state = request.app.state.synth

    def database():
        state.db.check()
        return {"url": state.db.describe()}

    def store():
        state.store.check()
        return {"store": state.store.describe()}

    def dagster():
        with _dagster_instance() as instance:
            ticks = {}
            for job_state in instance.all_instigator_state():
                last = instance.get_ticks(
                    job_state.instigator_origin_id, job_state.selector_id, limit=1
                )
                ticks[job_state.instigator_name] = {
                    "type": job_state.instigator_type.value,
                    "status": job_state.status.value,
                    "last_tick": (
                        {"status": last[0].status.value, "timestamp": last[0].timestamp}
                        if last
                        else None
                    ),
                }
            return {"storage": type(instance.run_storage).__name__, "instigators": ticks}

    return {"database": _check(database), "object_store": _check(store), "dagster": _check(dagster)}
