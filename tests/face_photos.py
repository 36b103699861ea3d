"""Photos of one real person for the Flux tests (see `core/flux/demo_photos.py`)."""

from synth_pipelines.core.flux.demo_photos import (
    EXIF_ORIENTATION,
    GREY,
    astronaut,
    encode,
    sideways_pixels,
    subject_photos,
    tilt,
    upright,
)

__all__ = [
    "EXIF_ORIENTATION",
    "GREY",
    "astronaut",
    "encode",
    "sideways_pixels",
    "subject_photos",
    "tilt",
    "upright",
]
