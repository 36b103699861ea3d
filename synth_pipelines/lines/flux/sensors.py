"""React to new subjects: a subjects partition and a photos → LoRA → samples run each (again
after a retry); the partition removed once the subject's consent is revoked."""

import dagster as dg

from synth_pipelines.core.flux.subjects import retired_subjects, subjects_to_train
from synth_pipelines.lines.dynamic import attempt_sensor, partition_job
from synth_pipelines.lines.retention import Retention
from synth_pipelines.partitions import subjects
from synth_pipelines.settings import Settings

FLUX_JOB = "flux_lora_job"
SUBJECT_SENSOR = "subject_sensor"

# Revoked subjects, at any age: the sensor removes them at once; retention catches any it missed.
retention = Retention(subjects, retired_subjects, "revoked subjects (at any age)")

flux_job = partition_job(
    FLUX_JOB,
    dg.AssetSelection.groups("flux"),
    subjects,
    "Photos → LoRA → samples for one subject (one partition of subjects).",
    gpu=True,  # flux_lora trains and samples on the GPU
)


def build_subject_sensor(settings: Settings) -> dg.SensorDefinition:
    return attempt_sensor(
        name=SUBJECT_SENSOR,
        job_name=FLUX_JOB,
        partitions_def=subjects,
        interval=settings.flux.sensor_interval,
        max_runs=settings.sensors.max_runs_per_tick,
        noun="subject",
        waits_for="a new subject or a retry",
        waiting=subjects_to_train,
        description=(
            "Adds a subjects partition per new subject and requests its photos → LoRA → "
            "samples run (again after a retry); removes a revoked subject's partition."
        ),
    )
