"""What the API's admin endpoints show of Dagster, read from the instance at DAGSTER_HOME: the
face buckets with a refill in flight, and each sensor's and schedule's last tick.

The API itself never imports Dagster: `synth serve` hands it this object (any object with the
same two methods will do), and without one the admin endpoints say that Dagster is not wired.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import dagster as dg

from synth_pipelines.core.errors import SynthError
from synth_pipelines.lines.faces.sensors import buckets_in_flight


class DagsterStatus:
    """Reads the Dagster instance at DAGSTER_HOME, opened once per process and held (opening
    one costs ~150 ms, two per dashboard refresh; the queries themselves take ~15 ms), and
    opened again should DAGSTER_HOME change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: tuple[str, dg.DagsterInstance] | None = None

    def _instance(self) -> dg.DagsterInstance:
        home = os.environ.get("DAGSTER_HOME")
        if not home:
            raise SynthError("DAGSTER_HOME is not set")
        with self._lock:
            if self._held is None or self._held[0] != home:
                self.close()
                self._held = (home, dg.DagsterInstance.get())
            return self._held[1]

    def close(self) -> None:
        """Let go of the held instance (a later call opens it again)."""
        if self._held is not None:
            self._held[1].dispose()
            self._held = None

    def refills_in_flight(self) -> list[str]:
        """Bucket keys with a face_inventory run queued or in progress."""
        return sorted(buckets_in_flight(self._instance()))

    def describe(self) -> dict[str, Any]:
        """The run storage in use and, per sensor and schedule, its status and last tick."""
        instance = self._instance()
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
