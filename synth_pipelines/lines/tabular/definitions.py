"""Tabular: confirmed jobs generated in parallel chunks, one run each from the job sensor."""

import dagster as dg

from synth_pipelines.lines.tabular.assets import build_tabular_dataset
from synth_pipelines.lines.tabular.sensors import build_tabular_job_sensor, retention, tabular_job
from synth_pipelines.settings import Settings

# Which of this line's partitions partition_retention_job removes.
RETENTION = retention


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[build_tabular_dataset(settings)],
        jobs=[tabular_job],
        sensors=[build_tabular_job_sensor(settings)],
    )
