"""Personas: corpus → dataset → adapter per consenting person, run after each upload."""

import dagster as dg

from synth_pipelines.lines.personas.assets import build_persona_assets
from synth_pipelines.lines.personas.sensors import (
    build_persona_source_sensor,
    persona_job,
    retention,
)
from synth_pipelines.settings import Settings

# Which of this line's partitions partition_retention_job removes.
RETENTION = retention


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=build_persona_assets(settings),
        jobs=[persona_job],
        sensors=[build_persona_source_sensor(settings)],
    )
