"""The FaceGenerator interface: what every generator backend returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from synth_pipelines.core.faces.buckets import Bucket


@dataclass
class GeneratedFace:
    """One generated image with the attributes the generator intended.

    `seed` reproduces this exact image from the same generator and bucket.
    `face_box` is (left, top, right, bottom) in pixels when the generator knows it.
    """

    image: Image.Image
    bucket: Bucket
    seed: int
    attributes: dict[str, Any] = field(default_factory=dict)
    face_box: tuple[int, int, int, int] | None = None


@runtime_checkable
class FaceGenerator(Protocol):
    """Generates faces for one bucket. Deterministic for a given (bucket, n, seed)."""

    name: str

    def generate(self, bucket: Bucket, n: int, seed: int) -> Sequence[GeneratedFace]: ...
