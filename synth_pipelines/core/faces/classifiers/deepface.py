"""The DeepFace AttributeClassifier backend (extra `deepface`), offline from local weights."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
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

# DeepFace's weight file names per engine (tensorflow, pytorch or onnxruntime).
_DEEPFACE_WEIGHT_SUFFIX = {"tensorflow": ".h5", "pytorch": ".pth", "onnx": ".onnx"}
_DEEPFACE_MODELS = ("age_model_weights", "gender_model_weights")
_DEEPFACE_GENDERS = {"Woman": "female", "Man": "male"}
# DEEPFACE_HOME is process-wide; calls that set it are serialised.
_DEEPFACE_ENV_LOCK = threading.Lock()


class DeepFaceClassifier:
    """DeepFace age and gender (extra `deepface`), offline from `weights_dir`.

    `weights_dir` is used as DEEPFACE_HOME: it must hold `.deepface/weights/` with
    `age_model_weights` and `gender_model_weights` for DeepFace's engine (`.h5` for
    tensorflow, `.pth` for pytorch, `.onnx` for onnxruntime), plus whatever weights the chosen
    `detector_backend` needs. A weight file DeepFace would download is an error instead.
    """

    name = "deepface"

    def __init__(
        self,
        weights_dir: str | Path | None,
        detector_backend: str = "opencv",
        min_face_confidence: float = 0.0,
    ) -> None:
        _require_package("deepface", "deepface")
        if weights_dir is None:
            raise MissingBackendError(
                "the 'deepface' classifier needs weights_dir: a directory holding "
                ".deepface/weights/{age,gender}_model_weights.<h5|pth|onnx> "
                "(DeepFace would otherwise download them at runtime)"
            )
        self.weights_dir = Path(weights_dir).expanduser().resolve()
        self.detector_backend = detector_backend
        self.min_face_confidence = min_face_confidence
        self._deepface: Any = None
        self._lock = threading.Lock()
        self._weights_path = self.weights_dir / ".deepface" / "weights"
        if not self._weights_path.is_dir():
            raise MissingCheckpointError(
                f"deepface weights_dir '{self.weights_dir}' has no .deepface/weights/ folder: "
                f"expected {self._expected_files_text()}"
            )

    def _expected_files_text(self) -> str:
        suffixes = "|".join(s.lstrip(".") for s in _DEEPFACE_WEIGHT_SUFFIX.values())
        return ", ".join(f"{self._weights_path / name}.<{suffixes}>" for name in _DEEPFACE_MODELS)

    def _ensure_model(self) -> Any:
        with self._lock:
            if self._deepface is not None:
                return self._deepface
            module = _import_backend(
                "deepface.DeepFace", "deepface", "pip install 'synth_pipelines[deepface]'"
            )
            suffix = _DEEPFACE_WEIGHT_SUFFIX[self._engine()]
            missing = [
                str(self._weights_path / f"{name}{suffix}")
                for name in _DEEPFACE_MODELS
                if not (self._weights_path / f"{name}{suffix}").is_file()
            ]
            if missing:
                raise MissingCheckpointError(
                    f"deepface weights_dir '{self.weights_dir}' lacks {', '.join(missing)}: "
                    "copy DeepFace's age and gender weights there (they are not downloaded)"
                )
            self._deepface = module
            return module

    @staticmethod
    def _engine() -> str:
        try:
            from deepface.commons import backend_utils
        except ImportError:  # deepface before multi-engine support: tensorflow only
            return "tensorflow"
        return str(backend_utils.get_backend_engine())

    @contextlib.contextmanager
    def _offline_home(self) -> Iterator[None]:
        """Point DEEPFACE_HOME at weights_dir and turn any weight download into an error."""
        with _DEEPFACE_ENV_LOCK:
            previous = os.environ.get("DEEPFACE_HOME")
            os.environ["DEEPFACE_HOME"] = str(self.weights_dir)
            weight_utils = None
            with contextlib.suppress(ImportError):
                from deepface.commons import weight_utils
            original = getattr(weight_utils, "download_weights_if_necessary", None)
            if original is not None:
                weight_utils.download_weights_if_necessary = self._no_download(original)
            try:
                yield
            finally:
                if original is not None:
                    weight_utils.download_weights_if_necessary = original
                if previous is None:
                    os.environ.pop("DEEPFACE_HOME", None)
                else:
                    os.environ["DEEPFACE_HOME"] = previous

    def _no_download(self, original: Callable[..., str]) -> Callable[..., str]:
        def local_weights_only(file_name: str, *args: Any, **kwargs: Any) -> str:
            target = self._weights_path / file_name
            if not target.is_file():
                raise MissingCheckpointError(
                    f"deepface wants {target}, which is not in weights_dir '{self.weights_dir}' "
                    f"(detector_backend={self.detector_backend!r}): copy it there; "
                    "weights are never downloaded at runtime"
                )
            return original(file_name, *args, **kwargs)

        return local_weights_only

    def classify(self, images: Sequence[Image.Image]) -> list[Classification]:
        """One Classification per image, in order; the largest face wins when there are several."""
        deepface = self._ensure_model()
        results = []
        with self._offline_home():
            for image in images:
                bgr = _rgb_array(image)[:, :, ::-1].copy()  # DeepFace expects OpenCV's BGR
                faces = deepface.analyze(
                    bgr,
                    actions=["age", "gender"],
                    detector_backend=self.detector_backend,
                    enforce_detection=False,
                    silent=True,
                )
                results.append(self._reading(faces, image.size))
        return results

    def _reading(self, faces: list[dict[str, Any]], size: tuple[int, int]) -> Classification:
        if self.detector_backend == "skip":
            found = faces  # no detector: the whole image is taken as the face
        else:
            # enforce_detection=False reports the whole image with face_confidence 0 when no face.
            found = [
                f
                for f in faces
                if float(f.get("face_confidence") or 0.0) > self.min_face_confidence
            ]
        if not found:
            return Classification(detected=False)

        def region_box(face: dict[str, Any]) -> tuple[float, float, float, float]:
            r = face["region"]
            return (r["x"], r["y"], r["x"] + r["w"], r["y"] + r["h"])

        face = max(found, key=lambda f: _area(region_box(f)))
        gender = _DEEPFACE_GENDERS.get(str(face["dominant_gender"]), str(face["dominant_gender"]))
        scores = face.get("gender") or {}
        gender_score = scores.get(face["dominant_gender"]) if isinstance(scores, dict) else None
        age = float(face["age"])
        return Classification(
            detected=True,
            gender=gender,
            gender_confidence=None if gender_score is None else float(gender_score) / 100.0,
            age=age,
            age_group=age_group_for_age(age),
            age_confidence=None,  # DeepFace reports an expected age, not a confidence
            box=_clamped_box(region_box(face), *size),
        )
