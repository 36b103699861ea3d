"""The CPU-heavy half of a refill: generate a chunk, classify it, label it, encode and hash it.

`process_chunk` is pure (no database, no store), so chunks can run in worker processes; the
refill orchestrator (`refill.py`) consumes their results in chunk order, which keeps a batch's
outcome the same however many workers ran it.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import pickle
import time
from collections import Counter
from collections.abc import Collection
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import imagehash

from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.faces.classification import AttributeClassifier, Classification
from synth_pipelines.core.faces.generation import FaceGenerator, GeneratedFace

# Why a generated face was not stored; every rejection is counted under one of these.
REJECT_NO_FACE = "no_face_detected"
REJECT_DISAGREE = "label_disagreement"
REJECT_OTHER_BUCKET = "classified_outside_bucket"
REJECT_EXACT_DUP = "exact_duplicate"
REJECT_NEAR_DUP = "near_duplicate"


@dataclass(frozen=True)
class ChunkSpec:
    """One chunk of a batch: `n` faces for `bucket` from generator seed `seed`."""

    bucket: Bucket
    n: int
    seed: int
    label_source: str


@dataclass
class Candidate:
    """One generated face after classification and labelling, ready to deduplicate and store.

    `already_stored` faces were stored by an earlier attempt of the batch and were not
    re-classified; `label` is None for a rejected face, with `reason` saying why.
    """

    seed: int
    intended: Bucket
    attributes: dict[str, Any]
    already_stored: bool = False
    reading: Classification = field(default_factory=lambda: Classification(detected=False))
    label: Bucket | None = None
    reason: str | None = None
    png: bytes = b""
    sha256: str = ""
    phash: int = 0
    width: int = 0
    height: int = 0


def choose_label(
    target: Bucket, face: GeneratedFace, reading: Classification, label_source: str
) -> tuple[Bucket | None, str | None]:
    """The bucket a face is stored under, or None and the rejection reason."""
    if label_source == "generator":
        return face.bucket, None
    if not reading.detected or reading.gender is None or reading.age_group is None:
        if label_source == "agree":
            return None, REJECT_NO_FACE
        return face.bucket, None
    predicted = Bucket(reading.gender, reading.age_group)
    if label_source == "agree" and predicted != face.bucket:
        return None, REJECT_DISAGREE
    if predicted != target:
        return None, REJECT_OTHER_BUCKET
    return predicted, None


def encode_png(image) -> bytes:
    buffer = io.BytesIO()
    # Fast zlib level: PNG size matters less than refill throughput; bytes stay deterministic.
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def perceptual_hash(image) -> int:
    """64-bit DCT perceptual hash (imagehash.phash) of a 4x-reduced greyscale copy; the
    reduction costs nothing in discrimination at phash's 32 px and saves most of its time."""
    grey = image.convert("L")
    if min(grey.size) >= 128:
        grey = grey.reduce(4)
    return int(str(imagehash.phash(grey)), 16)


def process_chunk(
    generator: FaceGenerator,
    classifier: AttributeClassifier,
    spec: ChunkSpec,
    skip_seeds: Collection[int] = (),
) -> tuple[list[Candidate], Counter[str]]:
    """Generate, classify, label, encode and hash one chunk; candidates in generation order."""
    timings: Counter[str] = Counter()
    tick = time.perf_counter()
    faces = list(generator.generate(spec.bucket, spec.n, spec.seed))
    timings["generate"] += time.perf_counter() - tick
    fresh = [face for face in faces if face.seed not in skip_seeds]
    tick = time.perf_counter()
    readings = iter(classifier.classify([face.image for face in fresh]) if fresh else [])
    timings["classify"] += time.perf_counter() - tick

    tick = time.perf_counter()
    candidates = []
    for face in faces:
        candidate = Candidate(face.seed, face.bucket, face.attributes)
        candidates.append(candidate)
        if face.seed in skip_seeds:
            candidate.already_stored = True
            continue
        candidate.reading = next(readings)
        candidate.label, candidate.reason = choose_label(
            spec.bucket, face, candidate.reading, spec.label_source
        )
        if candidate.label is None:
            continue
        candidate.png = encode_png(face.image)
        candidate.sha256 = hashlib.sha256(candidate.png).hexdigest()
        candidate.phash = perceptual_hash(face.image)
        candidate.width, candidate.height = face.image.size
    timings["encode_and_hash"] += time.perf_counter() - tick
    return candidates, timings


_WORKER_STATE: tuple[FaceGenerator, AttributeClassifier, frozenset[int]] | None = None


def _init_worker(payload: bytes) -> None:
    global _WORKER_STATE
    _WORKER_STATE = pickle.loads(payload)


def _process_in_worker(spec: ChunkSpec) -> tuple[list[Candidate], Counter[str]]:
    assert _WORKER_STATE is not None, "worker not initialised"
    generator, classifier, skip_seeds = _WORKER_STATE
    return process_chunk(generator, classifier, spec, skip_seeds)


class ChunkRunner:
    """Runs chunks inline (`workers=1`) or in a pool of worker processes.

    Generator and classifier are pickled into each worker, so each loads its own model: no
    model state (thread pools, GPU contexts) is ever shared across a fork.
    """

    def __init__(
        self,
        generator: FaceGenerator,
        classifier: AttributeClassifier,
        skip_seeds: Collection[int],
        workers: int = 1,
    ):
        self.generator = generator
        self.classifier = classifier
        self.skip_seeds = frozenset(skip_seeds)
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None
        if self.workers > 1:
            methods = multiprocessing.get_all_start_methods()
            # fork starts workers in milliseconds; spawn where fork does not exist.
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            payload = pickle.dumps((generator, classifier, self.skip_seeds))
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_init_worker, initargs=(payload,)
            )

    def submit(self, spec: ChunkSpec) -> Future:
        if self._pool is not None:
            return self._pool.submit(_process_in_worker, spec)
        future: Future = Future()
        try:
            future.set_result(process_chunk(self.generator, self.classifier, spec, self.skip_seeds))
        except Exception as exc:  # surfaced by .result(), exactly as from a worker
            future.set_exception(exc)
        return future

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ChunkRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
