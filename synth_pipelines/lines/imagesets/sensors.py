"""React to registered image sets: an image_sets partition and a profile → generate → validate
→ export run each (again after a retry)."""

import dagster as dg

from synth_pipelines.core.imagesets.registry import retired_sets, sets_to_run
from synth_pipelines.lines.dynamic import attempt_sensor, partition_job
from synth_pipelines.lines.retention import Retention
from synth_pipelines.partitions import image_sets
from synth_pipelines.settings import Settings

IMAGE_SET_JOB = "image_set_job"
IMAGE_SET_SENSOR = "image_set_sensor"

# Ready sets never run again (only a failed set retries); their exports stay in the store.
retention = Retention(
    image_sets, retired_sets, "sets ready (exported) at least SYNTH_PARTITION_RETENTION_DAYS ago"
)

image_set_job = partition_job(
    IMAGE_SET_JOB,
    dg.AssetSelection.groups("imagesets"),
    image_sets,
    "Profile → synthetic set → validation → exports for one image set (one partition).",
    gpu=True,  # synthetic_image_set takes a gpu slot (diffusion, GAN)
)


def build_image_set_sensor(settings: Settings) -> dg.SensorDefinition:
    return attempt_sensor(
        name=IMAGE_SET_SENSOR,
        job_name=IMAGE_SET_JOB,
        partitions_def=image_sets,
        interval=settings.images.sensor_interval,
        max_runs=settings.sensors.max_runs_per_tick,
        noun="image set",
        waits_for="a set registered with POST /imagesets or synth images register, or a retry",
        waiting=sets_to_run,
        description=(
            "Adds an image_sets partition per registered set and requests its profile → "
            "synthetic set → validation → exports run (again after a retry)."
        ),
    )
