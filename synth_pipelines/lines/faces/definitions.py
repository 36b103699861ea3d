"""Faces: the inventory partitioned by gender x age group, its refill job, the refill sensor and
the nightly top-up."""

import dagster as dg

from synth_pipelines.lines.faces.assets import build_face_inventory
from synth_pipelines.lines.faces.sensors import (
    build_inventory_refill_sensor,
    build_inventory_top_up_schedule,
    refill_job,
)
from synth_pipelines.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    # A GPU generator goes through the instance's gpu pool, one run at a time.
    pool = "gpu" if settings.faces.generator in ("diffusers", "stylegan2") else None
    return dg.Definitions(
        assets=[build_face_inventory(settings, pool=pool)],
        jobs=[refill_job],
        sensors=[build_inventory_refill_sensor(settings)],
        schedules=[build_inventory_top_up_schedule(settings)],
    )
