"""React to new subjects: a subjects partition and a photos → LoRA → samples run each (again
after a retry); the partition removed once the subject's consent is revoked."""

from typing import TYPE_CHECKING

import dagster as dg
from sqlalchemy import select

from synth_pipelines.core.storage.models import Subject
from synth_pipelines.partitions import subjects
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.sensors.dynamic import removing_partitions, runs_per_attempt
from synth_pipelines.sensors.in_process import tick_and_run_in_process
from synth_pipelines.settings import Settings

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

FLUX_JOB = "flux_lora_job"


def build_subject_sensor(
    settings: Settings, job: "UnresolvedAssetJobDefinition"
) -> dg.SensorDefinition:
    @dg.sensor(
        name="subject_sensor",
        job=job,
        minimum_interval_seconds=settings.flux_sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Adds a subjects partition per new subject and requests its photos → LoRA → "
            "samples run (again after a retry); removes a revoked subject's partition."
        ),
    )
    def subject_sensor(
        context: dg.SensorEvaluationContext, factory_db: FactoryDatabaseResource
    ) -> dg.SensorResult:
        with factory_db.get_db().session() as session:
            rows = session.execute(select(Subject.id, Subject.status, Subject.attempts)).all()
        waiting = {sid: attempts for sid, status, attempts in sorted(rows) if status == "pending"}
        result = runs_per_attempt(context, subjects, waiting, "subject_sensor", "subject")
        revoked = {sid for sid, status, _ in rows if status == "revoked"}
        return removing_partitions(context, subjects, result, revoked)

    return subject_sensor


def run_subjects_in_process(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    cursor: str | None = None,
    raise_on_error: bool = True,
) -> tuple[list[dg.ExecuteInProcessResult], str | None]:
    """One tick of subject_sensor and its runs, in this process (demo, CLI, tests)."""
    return tick_and_run_in_process(
        defs, instance, "subject_sensor", FLUX_JOB, subjects, cursor, raise_on_error
    )
