"""Image sets: registered sets profiled, generated to their profile, validated and exported,
one run each from the image set sensor."""

import dagster as dg

from synth_pipelines.lines.imagesets.assets import build_imageset_assets
from synth_pipelines.lines.imagesets.sensors import build_image_set_sensor, image_set_job, retention
from synth_pipelines.settings import Settings

# Which of this line's partitions partition_retention_job removes.
RETENTION = retention


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=build_imageset_assets(settings),
        jobs=[image_set_job],
        sensors=[build_image_set_sensor(settings)],
    )
