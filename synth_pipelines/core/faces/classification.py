"""The AttributeClassifier interface: gender and age predicted from a face image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL import Image


@dataclass(frozen=True)
class Classification:
    """A classifier's reading of one image. `detected` is False when no face was found;
    the label fields are then None. Confidences are in [0, 1]."""

    detected: bool
    gender: str | None = None
    gender_confidence: float | None = None
    age: float | None = None
    age_group: str | None = None
    age_confidence: float | None = None
    box: tuple[int, int, int, int] | None = None  # (left, top, right, bottom)


@runtime_checkable
class AttributeClassifier(Protocol):
    """Classifies images; one Classification per input image, in order."""

    name: str

    def classify(self, images: Sequence[Image.Image]) -> list[Classification]: ...
