"""Flux: photos → LoRA → samples per subject, run when the subject's photos arrive."""

import dagster as dg

from synth_pipelines.lines.flux.assets import build_flux_assets
from synth_pipelines.lines.flux.sensors import build_subject_sensor, flux_job, retention
from synth_pipelines.settings import Settings

# Which of this line's partitions partition_retention_job removes.
RETENTION = retention


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=build_flux_assets(settings),
        jobs=[flux_job],
        sensors=[build_subject_sensor(settings)],
    )
