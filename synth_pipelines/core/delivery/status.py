"""The status a client sees for a request, from its row and the clock."""

from __future__ import annotations

from datetime import datetime

from synth_pipelines.core.clock import aware, utcnow
from synth_pipelines.core.storage.models import DatasetRequest


def effective_status(request: DatasetRequest, now: datetime | None = None) -> str:
    """The status a client sees: packaging whose lease ran out is failed, ready past expiry is
    expired, even before the clean-up schedule has written it."""
    now = now or utcnow()
    if request.status == "packaging" and request.lease_until and aware(request.lease_until) < now:
        return "failed"
    if request.status == "ready" and request.expires_at and aware(request.expires_at) <= now:
        return "expired"
    return request.status
