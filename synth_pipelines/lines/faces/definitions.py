"""Faces: the inventory partitioned by gender x age group, its refill job, the refill sensor and
the nightly top-up."""

import dagster as dg

from synth_pipelines.lines.faces.assets import build_face_inventory
from synth_pipelines.lines.faces.sensors import (
    build_inventory_refill_sensor,
    build_inventory_top_up_schedule,
    build_refill_job,
)
from synth_pipelines.lines.gpu import GPU_POOL
from synth_pipelines.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    # A GPU generator goes through the instance's gpu pool, one run at a time (on Kubernetes, on
    # a GPU node).
    gpu = settings.faces.generator in ("diffusers", "stylegan2")
    return dg.Definitions(
        assets=[build_face_inventory(settings, pool=GPU_POOL if gpu else None)],
        jobs=[build_refill_job(gpu)],
        sensors=[build_inventory_refill_sensor(settings)],
        schedules=[build_inventory_top_up_schedule(settings)],
    )
