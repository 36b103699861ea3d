"""React to confirmed tabular jobs: one tabular_jobs partition and one tabular_dataset run each."""

import dagster as dg

from synth_pipelines.core.tabular.jobs import jobs_to_run, retired_jobs
from synth_pipelines.lines.dynamic import attempt_sensor, partition_job
from synth_pipelines.lines.retention import Retention
from synth_pipelines.lines.tabular.assets import ASSET
from synth_pipelines.partitions import tabular_jobs
from synth_pipelines.settings import Settings

TABULAR_JOB = "tabular_dataset_job"
TABULAR_JOB_SENSOR = "tabular_job_sensor"

# Completed jobs never run again (only a failed job retries).
retention = Retention(
    tabular_jobs, retired_jobs, "jobs completed at least SYNTH_PARTITION_RETENTION_DAYS ago"
)

# Chunks run in parallel processes inside the one step.
tabular_job = partition_job(
    TABULAR_JOB,
    dg.AssetSelection.assets(ASSET),
    tabular_jobs,
    "Generate one confirmed tabular job (one partition of tabular_dataset).",
)


def build_tabular_job_sensor(settings: Settings) -> dg.SensorDefinition:
    # The cursor maps each confirmed job to the attempt already requested: one run per attempt,
    # across ticks and daemon restarts; run keys `<id>:<attempt>` dedupe too.
    return attempt_sensor(
        name=TABULAR_JOB_SENSOR,
        job_name=TABULAR_JOB,
        partitions_def=tabular_jobs,
        interval=settings.tabular.sensor_interval,
        max_runs=settings.sensors.max_runs_per_tick,
        noun="job",
        waits_for="a job to be confirmed or retried",
        waiting=jobs_to_run,
        description=(
            "Adds a tabular_jobs partition per confirmed tabular job and requests a "
            "tabular_dataset run for it (again after a retry). Drafts are never run."
        ),
    )
