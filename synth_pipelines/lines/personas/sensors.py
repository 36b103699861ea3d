"""React to persona uploads and revocations: a personas partition and a training run per new
upload; the partition removed once the persona's consent is revoked."""

import dagster as dg

from synth_pipelines.core.persona.sources import personas_to_train
from synth_pipelines.lines.dynamic import removing_partitions, runs_per_attempt
from synth_pipelines.partitions import personas
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.settings import Settings

PERSONA_JOB = "persona_training_job"
PERSONA_SOURCE_SENSOR = "persona_source_sensor"

persona_job = dg.define_asset_job(
    PERSONA_JOB,
    selection=dg.AssetSelection.groups("personas"),
    partitions_def=personas,
    executor_def=dg.in_process_executor,
    description="Corpus → dataset → adapter for one persona (one partition of personas).",
)


def build_persona_source_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name=PERSONA_SOURCE_SENSOR,
        job_name=PERSONA_JOB,
        minimum_interval_seconds=settings.persona_sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Adds a personas partition when a persona's first export arrives and requests a "
            "corpus → dataset → adapter run after each upload; removes the partition of a "
            "persona whose consent was revoked."
        ),
    )
    def persona_source_sensor(
        context: dg.SensorEvaluationContext, factory_db: FactoryDatabaseResource
    ) -> dg.SensorResult:
        uploads, revoked = personas_to_train(factory_db.get_db())
        result = runs_per_attempt(context, personas, uploads, PERSONA_SOURCE_SENSOR, "persona")
        return removing_partitions(context, personas, result, revoked)

    return persona_source_sensor
