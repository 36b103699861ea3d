"""React to new subjects: a subjects partition and a photos → LoRA → samples run each (again
after a retry); the partition removed once the subject's consent is revoked."""

from typing import TYPE_CHECKING

import dagster as dg
from sqlalchemy import select

from synth_pipelines.core.storage.models import Subject
from synth_pipelines.partitions import subjects
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.sensors.dynamic import (
    attempt_run_request,
    partitioned_runs,
    removing_partitions,
    requested_attempts,
)
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
        requested = requested_attempts(context)
        with factory_db.get_db().session() as session:
            rows = session.execute(select(Subject.id, Subject.status, Subject.attempts)).all()
        waiting = {sid: attempts for sid, status, attempts in rows if status == "pending"}
        run_requests = [
            attempt_run_request(sid, attempt, {"synth/trigger": "subject_sensor"})
            for sid, attempt in sorted(waiting.items())
            if requested.get(sid) != attempt
        ]
        result = partitioned_runs(context, subjects, run_requests, waiting, "subject")
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
