"""React to persona uploads and revocations: a personas partition and a training run per new
upload; the partition removed once the persona's consent is revoked."""

import dagster as dg

from synth_pipelines.core.persona.sources import personas_to_train, retired_personas
from synth_pipelines.lines.dynamic import attempt_sensor, partition_job
from synth_pipelines.lines.retention import Retention
from synth_pipelines.partitions import personas
from synth_pipelines.settings import Settings

PERSONA_JOB = "persona_training_job"
PERSONA_SOURCE_SENSOR = "persona_source_sensor"

# Revoked personas, at any age: the sensor removes them at once; retention catches any it missed.
retention = Retention(personas, retired_personas, "revoked personas (at any age)")

persona_job = partition_job(
    PERSONA_JOB,
    dg.AssetSelection.groups("personas"),
    personas,
    "Corpus → dataset → adapter for one persona (one partition of personas).",
    gpu=True,  # persona_adapter trains on the GPU
)


def build_persona_source_sensor(settings: Settings) -> dg.SensorDefinition:
    # The "attempt" of a persona is its number of uploads: one run per upload.
    return attempt_sensor(
        name=PERSONA_SOURCE_SENSOR,
        job_name=PERSONA_JOB,
        partitions_def=personas,
        interval=settings.personas.sensor_interval,
        max_runs=settings.sensors.max_runs_per_tick,
        noun="persona",
        waits_for="a new upload to an active persona",
        waiting=personas_to_train,
        description=(
            "Adds a personas partition when a persona's first export arrives and requests a "
            "corpus → dataset → adapter run after each upload; removes the partition of a "
            "persona whose consent was revoked."
        ),
    )
