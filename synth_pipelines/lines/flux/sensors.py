"""React to new subjects: a subjects partition and a photos → LoRA → samples run each (again
after a retry); the partition removed once the subject's consent is revoked."""

import dagster as dg

from synth_pipelines.core.flux.subjects import subjects_to_train
from synth_pipelines.lines.dynamic import removing_partitions, runs_per_attempt
from synth_pipelines.partitions import subjects
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.settings import Settings

FLUX_JOB = "flux_lora_job"
SUBJECT_SENSOR = "subject_sensor"

flux_job = dg.define_asset_job(
    FLUX_JOB,
    selection=dg.AssetSelection.groups("flux"),
    partitions_def=subjects,
    executor_def=dg.in_process_executor,
    description="Photos → LoRA → samples for one subject (one partition of subjects).",
)


def build_subject_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name=SUBJECT_SENSOR,
        job_name=FLUX_JOB,
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
        waiting, revoked = subjects_to_train(factory_db.get_db())
        result = runs_per_attempt(context, subjects, waiting, SUBJECT_SENSOR, "subject")
        return removing_partitions(context, subjects, result, revoked)

    return subject_sensor
