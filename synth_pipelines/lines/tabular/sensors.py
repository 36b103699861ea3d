"""React to confirmed tabular jobs: one tabular_jobs partition and one tabular_dataset run each."""

import dagster as dg

from synth_pipelines.core.tabular.jobs import jobs_in
from synth_pipelines.lines.dynamic import runs_per_attempt
from synth_pipelines.lines.tabular.assets import ASSET
from synth_pipelines.partitions import tabular_jobs
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.settings import Settings

TABULAR_JOB = "tabular_dataset_job"
TABULAR_JOB_SENSOR = "tabular_job_sensor"

tabular_job = dg.define_asset_job(
    TABULAR_JOB,
    selection=dg.AssetSelection.assets(ASSET),
    partitions_def=tabular_jobs,
    # Chunks already run in parallel processes inside the step.
    executor_def=dg.in_process_executor,
    description="Generate one confirmed tabular job (one partition of tabular_dataset).",
)


def build_tabular_job_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name=TABULAR_JOB_SENSOR,
        job_name=TABULAR_JOB,
        minimum_interval_seconds=settings.tabular_sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Adds a tabular_jobs partition per confirmed tabular job and requests a "
            "tabular_dataset run for it (again after a retry). Drafts are never run."
        ),
    )
    def tabular_job_sensor(
        context: dg.SensorEvaluationContext, factory_db: FactoryDatabaseResource
    ) -> dg.SensorResult:
        # The cursor maps each confirmed job to the attempt already requested: one run per
        # attempt, across ticks and daemon restarts; run keys `<id>:<attempt>` dedupe too.
        waiting = {row.id: row.attempts for row in jobs_in(factory_db.get_db(), ("confirmed",))}
        return runs_per_attempt(context, tabular_jobs, waiting, TABULAR_JOB_SENSOR, "job")

    return tabular_job_sensor
