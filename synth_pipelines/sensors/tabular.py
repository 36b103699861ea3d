"""React to confirmed tabular jobs: one tabular_jobs partition and one tabular_dataset run each."""

from typing import TYPE_CHECKING

import dagster as dg

from synth_pipelines.core.tabular.jobs import jobs_in
from synth_pipelines.partitions import tabular_jobs
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.sensors.dynamic import runs_per_attempt
from synth_pipelines.sensors.in_process import tick_and_run_in_process
from synth_pipelines.settings import Settings

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

TABULAR_JOB = "tabular_dataset_job"


def build_tabular_job_sensor(
    settings: Settings, job: "UnresolvedAssetJobDefinition"
) -> dg.SensorDefinition:
    @dg.sensor(
        name="tabular_job_sensor",
        job=job,
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
        return runs_per_attempt(context, tabular_jobs, waiting, "tabular_job_sensor", "job")

    return tabular_job_sensor


def run_tabular_jobs_in_process(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    cursor: str | None = None,
    raise_on_error: bool = True,
) -> tuple[list[dg.ExecuteInProcessResult], str | None]:
    """One tick of tabular_job_sensor and its runs, in this process (demo, CLI, tests)."""
    return tick_and_run_in_process(
        defs, instance, "tabular_job_sensor", TABULAR_JOB, tabular_jobs, cursor, raise_on_error
    )
