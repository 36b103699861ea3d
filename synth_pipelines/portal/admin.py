"""The admin dashboard: /admin/metrics and /admin/system-status as a page that refreshes itself."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from synth_pipelines.api.admin import dataset_metrics, system_health
from synth_pipelines.api.common import api_state
from synth_pipelines.portal.pages import render
from synth_pipelines.portal.sessions import check_csrf, require_admin

router = APIRouter(
    prefix="/portal/admin",
    dependencies=[Depends(require_admin), Depends(check_csrf)],
    include_in_schema=False,
)
REFRESH_SECONDS = 5
BAR_WIDTH = 320  # px of the inventory chart's longest bar


def inventory_bars(levels: dict[str, int], targets: dict[str, int]) -> list[dict[str, Any]]:
    """One chart row per bucket: its level and target as bar and marker widths (px)."""
    scale = max([*levels.values(), *targets.values(), 1])
    return [
        {
            "bucket": bucket,
            "level": level,
            "target": targets.get(bucket, 0),
            "width": round(BAR_WIDTH * level / scale),
            "marker": round(BAR_WIDTH * targets.get(bucket, 0) / scale),
            "low": level < targets.get(bucket, 0),
        }
        for bucket, level in levels.items()
    ]


def _context(request: Request) -> dict[str, Any]:
    state = api_state(request)
    metrics = dataset_metrics(state)
    return {
        "metrics": metrics,
        "health": system_health(state),
        "bars": inventory_bars(metrics["inventory"], metrics["inventory_targets"]),
        "bar_width": BAR_WIDTH,
        "refresh": REFRESH_SECONDS,
    }


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request) -> HTMLResponse:
    return render(request, "admin/dashboard.html", _context(request))


@router.get("/panel", response_class=HTMLResponse)
def dashboard_panel(request: Request) -> HTMLResponse:
    """The dashboard's figures alone: what its htmx refresh swaps in."""
    return render(request, "admin/_panel.html", _context(request))
