"""The InsightFace AttributeClassifier backend (extra `insightface`), offline from a local pack."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from synth_pipelines.core.errors import (
    MissingBackendError,
    MissingCheckpointError,
)
from synth_pipelines.core.faces.buckets import age_group_for_age
from synth_pipelines.core.faces.classification import Classification
from synth_pipelines.core.faces.classifiers.base import (
    _area,
    _clamped_box,
    _import_backend,
    _require_package,
    _rgb_array,
)

# Detector file of the InsightFace model packs we know; other packs need some det_/scrfd_ file.
_INSIGHTFACE_DETECTORS = {
    "buffalo_l": "det_10g.onnx",
    "antelopev2": "scrfd_10g_bnkps.onnx",
}
_INSIGHTFACE_GENDERAGE = "genderage.onnx"


class InsightFaceClassifier:
    """InsightFace's genderage model (extra `insightface`), offline from `model_root`.

    `model_root` is FaceAnalysis's `root`: it must hold `models/<model_name>/` with the pack's
    detector (`det_10g.onnx` for buffalo_l) and `genderage.onnx`. Only those two models load.
    """

    def __init__(
        self,
        model_root: str | Path | None,
        model_name: str = "buffalo_l",
        det_size: int = 640,
        det_thresh: float = 0.5,
    ) -> None:
        _require_package("insightface", "insightface")
        self.name = f"insightface:{model_name}"
        self.model_name = model_name
        self.det_size = det_size
        self.det_thresh = det_thresh
        detector = _INSIGHTFACE_DETECTORS.get(model_name, "a detector det_*.onnx or scrfd_*.onnx")
        expected = f"{detector} and {_INSIGHTFACE_GENDERAGE}"
        if model_root is None:
            raise MissingBackendError(
                "the 'insightface' classifier needs model_root: a directory holding "
                f"models/{model_name}/ with {expected} (InsightFace would otherwise download "
                "the pack at runtime)"
            )
        self.model_root = Path(model_root).expanduser().resolve()
        pack = self.model_root / "models" / model_name
        has_detector = (
            (pack / _INSIGHTFACE_DETECTORS[model_name]).is_file()
            if model_name in _INSIGHTFACE_DETECTORS
            else any(pack.glob("det_*.onnx")) or any(pack.glob("scrfd_*.onnx"))
        )
        if not (has_detector and (pack / _INSIGHTFACE_GENDERAGE).is_file()):
            raise MissingCheckpointError(
                f"insightface model pack '{pack}' is missing or incomplete: expected {expected} "
                "there (unzip the pack into that folder; it is not downloaded)"
            )
        self._app: Any = None
        self._lock = threading.Lock()

    def _ensure_model(self) -> Any:
        with self._lock:
            if self._app is None:
                app_module = _import_backend(
                    "insightface.app", "insightface", "pip install 'synth_pipelines[insightface]'"
                )
                # The pack folder exists, so FaceAnalysis loads it instead of downloading.
                app = app_module.FaceAnalysis(
                    name=self.model_name,
                    root=str(self.model_root),
                    allowed_modules=["detection", "genderage"],
                    providers=["CPUExecutionProvider"],
                )
                app.prepare(
                    ctx_id=-1, det_thresh=self.det_thresh, det_size=(self.det_size, self.det_size)
                )
                self._app = app
            return self._app

    def classify(self, images: Sequence[Image.Image]) -> list[Classification]:
        """One Classification per image, in order; the largest face wins when there are several."""
        app = self._ensure_model()
        results = []
        for image in images:
            bgr = _rgb_array(image)[:, :, ::-1].copy()  # InsightFace expects OpenCV's BGR
            faces = app.get(bgr)
            if not faces:
                results.append(Classification(detected=False))
                continue
            face = max(faces, key=lambda f: _area(f.bbox))
            age = float(face.age)
            results.append(
                Classification(
                    detected=True,
                    gender="female" if face.sex == "F" else "male",
                    gender_confidence=None,  # the genderage model gives an argmax only
                    age=age,
                    age_group=age_group_for_age(age),
                    age_confidence=None,
                    box=_clamped_box(face.bbox, *image.size),
                )
            )
        return results
