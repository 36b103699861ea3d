"""What the API's admin endpoints show of Dagster, read from the instance at DAGSTER_HOME: the
face buckets with a refill in flight, and each sensor's and schedule's last tick.

The API itself never imports Dagster: `synth serve` hands it this object (any object with the
same two methods will do), and without one the admin endpoints say that Dagster is not wired.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from synth_pipelines.core.errors import SynthError
from synth_pipelines.lines.faces.sensors import buckets_in_flight


class DagsterStatus:
    """Reads the Dagster instance on each call (cheap: it is opened and closed per request)."""

    def _instance(self) -> dg.DagsterInstance:
        if not os.environ.get("DAGSTER_HOME"):
            raise SynthError("DAGSTER_HOME is not set")
        return dg.DagsterInstance.get()

    def refills_in_flight(self) -> list[str]:
        """Bucket keys with a face_inventory run queued or in progress."""
        with self._instance() as instance:
            return sorted(buckets_in_flight(instance))

    def describe(self) -> dict[str, Any]:
        """The run storage in use and, per sensor and schedule, its status and last tick."""
        with self._instance() as instance:
            ticks = {}
            for state in instance.all_instigator_state():
                last = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
                ticks[state.instigator_name] = {
                    "type": state.instigator_type.value,
                    "status": state.status.value,
                    "last_tick": (
                        {"status": last[0].status.value, "timestamp": last[0].timestamp}
                        if last
                        else None
                    ),
                }
            return {"storage": type(instance.run_storage).__name__, "instigators": ticks}
