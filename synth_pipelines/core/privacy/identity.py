"""Identity embeddings: dlib's 128-d face descriptor, and matching against a protected set.

A face is found by dlib's HOG detector, aligned by the 5-point landmark model into a 150 px chip
and described by dlib's ResNet; `dlib_models` finds and loads the models (once per process, at
the first embedding) and runs the ResNet with torch. Two descriptors closer than 0.6
(Euclidean) are the same person by dlib's own rule (99.38% on LFW).
"""

from __future__ import annotations

import io
import multiprocessing
import pickle
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps

from synth_pipelines.core.errors import InvalidInputError

if TYPE_CHECKING:
    from synth_pipelines.core.privacy.dlib_models import FaceModels

DEFAULT_THRESHOLD = 0.6  # dlib's same-person threshold for this network
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
_SUFFIXES = " ".join(sorted(IMAGE_SUFFIXES))
CHIP_SIZE = 150  # dlib_models.CHIP_SIZE, kept here: importing dlib_models imports torch
DESCRIPTOR_SIZE = 128
CHIP_PADDING = 0.25  # the padding dlib's compute_face_descriptor uses; the network expects it
MIN_SIDE = 32  # below this an image holds no face worth describing
_BATCH = 32  # chips per forward pass: batches run ~2x faster per face than single chips
_CHUNK = 16  # images per task for worker processes: enough for batched forward passes
_IN_PROCESS = 32  # up to this many images, starting a worker costs more than it saves


def decode_rgb(data: bytes) -> np.ndarray:
    """Encoded image bytes -> (h, w, 3) uint8 RGB, EXIF orientation applied.

    InvalidInputError when the bytes are not an image PIL can decode.
    """
    try:
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
        return np.asarray(image.convert("RGB"))
    except Exception as exc:  # PIL's plugins raise many types on malformed bytes
        raise InvalidInputError(f"not a decodable image: {type(exc).__name__}: {exc}") from exc


class FaceEmbedder:
    """dlib HOG detector + 5-point landmarks + ResNet descriptor; models found by path.

    The face is the largest detection among those scoring at least half the best score (the
    astronaut photo has a false positive at 0.1, larger than the face at 1.6, after JPEG).
    `upsample`: times the detector doubles the image (finds smaller faces, ~4x slower each).
    `fallback_full_image`: when no face passes the detector, use the best weak detection (score
    above `weak_score`), else the whole image as the face box (generated faces are centred).
    `detect_max_side`: larger images are detected on a copy downscaled to this long side.
    The models load at the first embedding (or `load()`), once per process.
    """

    def __init__(
        self,
        models_dir: Path | None = None,
        upsample: int = 0,
        fallback_full_image: bool = True,
        *,
        detect_max_side: int = 640,
        weak_score: float = -0.6,
    ) -> None:
        if isinstance(upsample, bool) or not isinstance(upsample, int) or not 0 <= upsample <= 3:
            raise InvalidInputError(f"upsample must be an integer from 0 to 3, got {upsample!r}")
        if detect_max_side < 80:  # dlib's HOG finds faces of ~80 px and up
            raise InvalidInputError(f"detect_max_side must be >= 80, got {detect_max_side}")
        self._models_dir = Path(models_dir) if models_dir is not None else None
        self.upsample = upsample
        self.fallback_full_image = fallback_full_image
        self.detect_max_side = detect_max_side
        self.weak_score = weak_score
        self._models: FaceModels | None = None

    @property
    def models_dir(self) -> Path:
        """Where the model files are; MissingBackendError if not given and not installed."""
        if self._models_dir is None:
            from synth_pipelines.core.privacy.dlib_models import default_models_dir

            self._models_dir = default_models_dir()
        return self._models_dir

    def load(self) -> FaceEmbedder:
        """Load the models now rather than at the first embedding (~1 s, once per process);
        MissingBackendError / MissingCheckpointError when they are missing or broken."""
        self._ready()
        return self

    def _ready(self) -> FaceModels:
        if self._models is None:
            from synth_pipelines.core.privacy.dlib_models import load_face_models

            self._models = load_face_models(self.models_dir)
        return self._models

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes get the configuration and load their own models.
        return {k: v for k, v in vars(self).items() if k != "_models"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _models=None)

    def embed(
        self, rgb: np.ndarray, *, fallback_full_image: bool | None = None
    ) -> np.ndarray | None:
        """(h, w, 3) uint8 RGB -> float32 (128,) descriptor of the largest detected face.

        None when no face is found and the fallback is off (`fallback_full_image` here
        overrides the embedder's setting), or when the image is under 32 px a side.
        """
        return self.embed_batch([rgb], fallback_full_image=fallback_full_image)[0]

    def embed_bytes(self, data: bytes) -> np.ndarray | None:
        """Encoded image bytes -> descriptor, as `embed`; InvalidInputError if not an image."""
        return self.embed(decode_rgb(data))

    def embed_batch(
        self, images: Sequence[np.ndarray], *, fallback_full_image: bool | None = None
    ) -> list[np.ndarray | None]:
        """`embed` for many images at once, in order; the ResNet runs on batches of chips."""
        fallback = self.fallback_full_image if fallback_full_image is None else fallback_full_image
        chips = [self.face_chip(rgb, fallback=fallback) for rgb in images]
        found = [i for i, chip in enumerate(chips) if chip is not None]
        out: list[np.ndarray | None] = [None] * len(chips)
        for start in range(0, len(found), _BATCH):
            index = found[start : start + _BATCH]
            vectors = self._ready().resnet.describe(np.stack([chips[i] for i in index]))
            for i, vector in zip(index, vectors, strict=True):
                out[i] = vector
        return out

    def face_chip(self, rgb: np.ndarray, *, fallback: bool) -> np.ndarray | None:
        """The aligned (150, 150, 3) uint8 chip of the largest face, as the ResNet takes it."""
        rgb = _check_rgb(rgb)
        height, width = rgb.shape[:2]
        if min(height, width) < MIN_SIDE:
            return None
        box = self._face_box(rgb, fallback)
        if box is None:
            return None
        import dlib

        rect = dlib.rectangle(*box)
        shape = self._ready().landmarks(rgb, rect)
        return np.asarray(dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING))

    def _face_box(self, rgb: np.ndarray, fallback: bool) -> tuple[int, int, int, int] | None:
        """(left, top, right, bottom) in `rgb`'s pixels, or None: see the class docstring."""
        height, width = rgb.shape[:2]
        scale = min(1.0, self.detect_max_side / max(height, width))
        small = rgb
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
        # One pass at the weak threshold gives the strong detections (score > 0) as well.
        threshold = min(self.weak_score, 0.0) if fallback else 0.0
        rects, scores, _ = self._ready().detector.run(small, self.upsample, threshold)
        strong = [(s, r) for r, s in zip(rects, scores, strict=True) if s > 0.0]
        if strong:
            # A weak false positive must not win on size: keep those scoring >= half the best.
            top = max(s for s, _ in strong)
            best = max((r for s, r in strong if s >= top / 2), key=lambda r: r.area())
        elif fallback and len(rects):
            best = rects[int(np.argmax(scores))]
        elif fallback:
            return (0, 0, width - 1, height - 1)
        else:
            return None
        box = (best.left() / scale, best.top() / scale, best.right() / scale, best.bottom() / scale)
        left, top, right, bottom = (round(v) for v in box)
        # Boxes may reach past the border; clip so the landmark model sees the image only.
        return (max(left, 0), max(top, 0), min(right, width - 1), min(bottom, height - 1))


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    shape, dtype = getattr(rgb, "shape", ()), getattr(rgb, "dtype", type(rgb).__name__)
    if dtype != np.uint8 or len(shape) != 3 or shape[2] != 3:
        raise InvalidInputError(
            f"expected an (h, w, 3) uint8 RGB array, got shape {shape} dtype {dtype}: "
            "use np.asarray(image.convert('RGB'))"
        )
    return np.ascontiguousarray(rgb)


@dataclass
class ReferenceSet:
    """The protected set: real photos that no synthetic face may match.

    `names[k]` is the file (relative to the folder) whose face is `embeddings[k]`; `skipped`
    maps each file that gave no embedding to the reason.
    """

    names: list[str]
    embeddings: np.ndarray
    skipped: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_folder(cls, folder: Path, embedder: FaceEmbedder) -> ReferenceSet:
        """Embed the largest face of every .jpg/.jpeg/.png/.webp/.bmp under `folder`
        (recursive, sorted by path). Only detected faces count: a photo without one is skipped,
        never embedded as a whole image. InvalidInputError if `folder` is not a folder.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise InvalidInputError(
                f"reference folder '{folder}' does not exist or is not a folder: "
                "point it at the folder of protected photos"
            )
        names: list[str] = []
        vectors: list[np.ndarray] = []
        skipped: dict[str, str] = {}
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = path.relative_to(folder).as_posix()
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped[name] = f"not an image file: suffix '{path.suffix}' is not {_SUFFIXES}"
                continue
            try:
                rgb = decode_rgb(path.read_bytes())
            except InvalidInputError as exc:
                skipped[name] = str(exc)
                continue
            vector = embedder.embed(rgb, fallback_full_image=False)
            if vector is None:
                skipped[name] = "no face detected: crop the photo closer to the face"
                continue
            names.append(name)
            vectors.append(vector)
        embeddings = np.stack(vectors) if vectors else np.zeros((0, DESCRIPTOR_SIZE), np.float32)
        return cls(names, embeddings.astype(np.float32), skipped)


def _as_embeddings(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != DESCRIPTOR_SIZE:
        raise InvalidInputError(f"{what} must be (n, {DESCRIPTOR_SIZE}), got shape {array.shape}")
    return array


_ROWS = 1024  # query rows per distance block: 8 MB per 1,000 references


def _distance_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # |a-b|^2 = |a|^2 + |b|^2 - 2ab, in float64 so identical vectors come out at ~1e-7, not 1e-3.
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(squared, 0.0))


def identity_matches(
    embeddings: np.ndarray, reference: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> list[tuple[int, int, float]]:
    """(query index, reference index, Euclidean distance) for every pair closer than
    `threshold`, sorted by query then reference index. Inputs are (n, 128) and (m, 128)."""
    queries = _as_embeddings(embeddings, "embeddings")
    refs = _as_embeddings(reference, "reference")
    matches: list[tuple[int, int, float]] = []
    for start in range(0, len(queries), _ROWS):
        distances = _distance_block(queries[start : start + _ROWS], refs)
        i, j = np.nonzero(distances < threshold)
        matches.extend(zip((i + start).tolist(), j.tolist(), distances[i, j].tolist(), strict=True))
    return matches


def same_identity_pairs(
    embeddings: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> list[tuple[int, int, float]]:
    """(i, j, distance) with i < j for every pair within one set closer than `threshold`."""
    vectors = _as_embeddings(embeddings, "embeddings")
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, len(vectors), _ROWS):
        distances = _distance_block(vectors[start : start + _ROWS], vectors[start:])
        i, j = np.nonzero(distances < threshold)
        keep = j > i  # both relative to `start`: strictly above the diagonal
        i, j = i[keep], j[keep]
        pairs.extend(
            zip((i + start).tolist(), (j + start).tolist(), distances[i, j].tolist(), strict=True)
        )
    return pairs


_WORKER_EMBEDDER: FaceEmbedder | None = None


def _init_worker(payload: bytes) -> None:
    global _WORKER_EMBEDDER
    # Unpickled, not inherited: the worker loads its own models, never shares them across a fork.
    _WORKER_EMBEDDER = pickle.loads(payload).load()


def _embed_chunk(datas: list[bytes]) -> list[np.ndarray | None]:
    assert _WORKER_EMBEDDER is not None, "worker not initialised"
    return _embed_decoded(_WORKER_EMBEDDER, datas)


def _decoded_or_none(data: bytes) -> np.ndarray | None:
    try:
        return decode_rgb(data)
    except InvalidInputError:
        return None  # undecodable: None, like an image without a face


def _embed_decoded(embedder: FaceEmbedder, datas: Sequence[bytes]) -> list[np.ndarray | None]:
    images = [_decoded_or_none(data) for data in datas]
    slots = [k for k, image in enumerate(images) if image is not None]
    out: list[np.ndarray | None] = [None] * len(datas)
    vectors = embedder.embed_batch([image for image in images if image is not None])
    for k, vector in zip(slots, vectors, strict=True):
        out[k] = vector
    return out


def embed_many(
    datas: Sequence[bytes], workers: int = 2, *, embedder: FaceEmbedder | None = None
) -> list[np.ndarray | None]:
    """Descriptors for many encoded images, in order; None where no face could be described
    or the bytes do not decode (`measure_image` says which).

    `workers` processes in all: this one and `workers - 1` forked ones, each loading the models
    once (~1 s, overlapped with this process's work). `workers=1`, or 32 images or fewer, runs
    here alone.
    `embedder` carries the settings (default: `FaceEmbedder()`).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(f"workers must be an integer >= 1, got {workers!r}")
    embedder = embedder or FaceEmbedder()
    datas = list(datas)
    if workers == 1 or len(datas) <= _IN_PROCESS:
        return _embed_decoded(embedder, datas)
    chunks = [datas[i : i + _CHUNK] for i in range(0, len(datas), _CHUNK)]
    done: dict[int, list[np.ndarray | None]] = {}
    # fork starts a worker in milliseconds, torch and dlib already imported; it loads its own
    # models and runs torch on one thread, so no native thread pool crosses the fork.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    payload = pickle.dumps(embedder.load())  # loaded first, so workers inherit the imports
    with ProcessPoolExecutor(workers - 1, context, _init_worker, (payload,)) as pool:
        futures = [pool.submit(_embed_chunk, chunk) for chunk in chunks]
        # Workers take chunks from the head; this process takes them from the tail until it
        # meets one a worker already holds (a future it can no longer cancel).
        for k in reversed(range(len(chunks))):
            if not futures[k].cancel():
                break
            done[k] = _embed_decoded(embedder, chunks[k])
        return [v for k, f in enumerate(futures) for v in (done[k] if k in done else f.result())]
