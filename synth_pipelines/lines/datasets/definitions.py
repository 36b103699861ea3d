"""Datasets: requests packaged from the face inventory, the request sensor, hourly expiry."""

import dagster as dg

from synth_pipelines.lines.datasets.assets import build_dataset_package, expire_datasets_job
from synth_pipelines.lines.datasets.sensors import (
    build_dataset_request_sensor,
    build_expire_datasets_schedule,
    package_job,
    retention,
)
from synth_pipelines.settings import Settings

# Which of this line's partitions partition_retention_job removes.
RETENTION = retention


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[build_dataset_package(settings)],
        jobs=[package_job, expire_datasets_job],
        sensors=[build_dataset_request_sensor(settings)],
        schedules=[build_expire_datasets_schedule()],
    )
