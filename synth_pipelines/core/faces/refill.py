"""Refill one inventory bucket: generate, classify, label, deduplicate, store.

`refill_bucket` is the whole of what the `face_inventory` asset does for one partition, with no
Dagster import. It is idempotent per batch: faces are generated from (batch seed, chunk) so a
retried batch regenerates the same faces, finds the ones an earlier attempt stored, and only adds
the rest. Objects are written before their rows, so no row ever points at a missing object.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import imagehash
import numpy as np
from PIL import Image

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.faces.classification import AttributeClassifier, Classification
from synth_pipelines.core.faces.generation import FaceGenerator, GeneratedFace
from synth_pipelines.core.faces.inventory import (
    all_phashes,
    existing_sha256,
    hamming_min,
    insert_faces,
    inventory_levels,
    seeds_in_batch,
    to_signed64,
)
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.object_store import ObjectStore

LABEL_SOURCES = ("classifier", "generator", "agree")

# Why a generated face was not stored; every rejection is counted under one of these.
REJECT_NO_FACE = "no_face_detected"
REJECT_DISAGREE = "label_disagreement"
REJECT_OTHER_BUCKET = "classified_outside_bucket"
REJECT_EXACT_DUP = "exact_duplicate"
REJECT_NEAR_DUP = "near_duplicate"

PREVIEW_FACES = 20


@dataclass(frozen=True)
class RefillPolicy:
    """How faces are labelled and filtered.

    label_source: `classifier` uses the classifier's labels (the generator's when no face is
    detected), `generator` the intended labels, `agree` keeps only faces where both agree.
    """

    label_source: str = "classifier"
    phash_distance: int = 4
    chunk_size: int = 32
    # Stop after this many generated faces per requested face, so a bucket the classifier
    # rarely agrees with cannot spin forever.
    max_attempts_factor: float = 4.0

    def __post_init__(self) -> None:
        if self.label_source not in LABEL_SOURCES:
            raise InvalidInputError(
                f"label_source '{self.label_source}' is not one of: {', '.join(LABEL_SOURCES)}"
            )
        if not 0 <= self.phash_distance <= 64:
            raise InvalidInputError(f"phash_distance {self.phash_distance} is not in 0..64")


@dataclass
class RefillReport:
    """What a refill did, for logs and the materialization metadata."""

    bucket: str
    batch_id: str
    requested: int
    level_before: int
    added: int = 0
    already_stored: int = 0
    generated: int = 0
    # Classifier readings of the faces that reached it: detected, and agreeing with intent.
    classified: int = 0
    detected: int = 0
    agreed: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    level_after: int = 0
    seconds: float = 0.0
    timings: Counter[str] = field(default_factory=Counter)
    object_keys: list[str] = field(default_factory=list)
    # The first few stored images, for a preview contact sheet.
    previews: list[Image.Image] = field(default_factory=list, repr=False)

    @property
    def accepted(self) -> int:
        return self.added + self.already_stored

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.generated if self.generated else 0.0

    @property
    def classifier_agreement(self) -> float:
        """Share of classified faces whose detected bucket is the one the generator intended."""
        return self.agreed / self.classified if self.classified else 0.0

    @property
    def detection_rate(self) -> float:
        return self.detected / self.classified if self.classified else 0.0

    @property
    def seconds_per_face(self) -> float:
        return self.seconds / self.added if self.added else 0.0

    @property
    def shortfall(self) -> int:
        return max(0, self.requested - self.accepted)


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


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integer parts (stable across processes and Python versions)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0] >> 1)


def batch_seed_for(batch_id: str) -> int:
    """A stable integer seed for a batch id (e.g. a Dagster run's root run id)."""
    return int.from_bytes(hashlib.sha256(batch_id.encode()).digest()[:8], "big") >> 1


def encode_png(face: GeneratedFace) -> bytes:
    buffer = io.BytesIO()
    # Fast zlib level: PNG size matters less than refill throughput; bytes stay deterministic.
    face.image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def object_key_for(bucket: Bucket, digest: str) -> str:
    return f"faces/{bucket.gender}/{bucket.age_group}/{digest}.png"


def refill_bucket(
    *,
    bucket: Bucket,
    count: int | None,
    batch_id: str,
    generator: FaceGenerator,
    classifier: AttributeClassifier,
    store: ObjectStore,
    db: FactoryDatabase,
    policy: RefillPolicy | None = None,
    seed: int | None = None,
    target: int | None = None,
    progress: Callable[[RefillReport], None] | None = None,
) -> RefillReport:
    """Add up to `count` faces to `bucket` (fewer when attempts run out; see `shortfall`).

    `count=None` tops the bucket up to `target`. `batch_id` names this unit of work: calling
    again with the same batch id and seed resumes it instead of adding a second batch.
    """
    policy = policy or RefillPolicy()
    if count is None and target is None:
        raise InvalidInputError("refill needs a count or a target level")
    if count is not None and count < 0:
        raise InvalidInputError(f"count must be 0 or more, got {count}")
    started = time.perf_counter()
    seed = batch_seed_for(batch_id) if seed is None else seed
    level_before = inventory_levels(db)[bucket.key]
    stored_seeds = seeds_in_batch(db, batch_id)
    if count is None:
        # Faces an earlier attempt of this batch stored already count towards the level.
        count = max(0, (target or 0) - level_before) + len(stored_seeds)
    report = RefillReport(bucket.key, batch_id, count, level_before)
    known_hashes = all_phashes(db)
    max_generated = max(count, int(count * policy.max_attempts_factor))

    chunk_index = 0
    while report.accepted < count and report.generated < max_generated:
        # Generators are prefix-stable per seed, so sizing chunks by need keeps retries exact.
        n = min(policy.chunk_size, count - report.accepted, max_generated - report.generated)
        tick = time.perf_counter()
        faces = list(generator.generate(bucket, n, derive_seed(seed, chunk_index)))
        chunk_index += 1
        report.generated += len(faces)
        report.timings["generate"] += time.perf_counter() - tick

        fresh = []
        for face in faces:
            if face.seed in stored_seeds:
                report.already_stored += 1
            else:
                fresh.append(face)
        fresh = fresh[: max(0, count - report.accepted)]
        if not fresh:
            continue

        tick = time.perf_counter()
        readings = classifier.classify([face.image for face in fresh])
        report.timings["classify"] += time.perf_counter() - tick

        tick = time.perf_counter()
        candidates = []
        for face, reading in zip(fresh, readings, strict=True):
            report.classified += 1
            if reading.detected:
                report.detected += 1
                report.agreed += (reading.gender, reading.age_group) == (
                    face.bucket.gender,
                    face.bucket.age_group,
                )
            label, reason = choose_label(bucket, face, reading, policy.label_source)
            if label is None:
                report.rejected[reason or "unknown"] += 1
                continue
            png = encode_png(face)
            candidates.append((face, reading, label, png, hashlib.sha256(png).hexdigest()))
        known_digests = existing_sha256(db, [c[4] for c in candidates])
        rows = []
        for face, reading, label, png, digest in candidates:
            if digest in known_digests:
                report.rejected[REJECT_EXACT_DUP] += 1
                continue
            phash = int(str(imagehash.phash(face.image)), 16)
            if hamming_min(phash, known_hashes) <= policy.phash_distance:
                report.rejected[REJECT_NEAR_DUP] += 1
                continue
            known_digests.add(digest)
            known_hashes = np.append(known_hashes, np.uint64(phash))
            key = object_key_for(label, digest)
            store.put_bytes(key, png, content_type="image/png")
            rows.append(_face_row(face, reading, label, key, digest, phash, generator, classifier))
            rows[-1].update(batch_id=batch_id, label_source=policy.label_source)
            report.object_keys.append(key)
            if len(report.previews) < PREVIEW_FACES:
                report.previews.append(face.image)
        report.timings["dedup_and_store"] += time.perf_counter() - tick
        tick = time.perf_counter()
        inserted = insert_faces(db, rows)
        if inserted < len(rows):
            # A concurrent writer stored the same image between our check and our insert.
            report.rejected[REJECT_EXACT_DUP] += len(rows) - inserted
        report.added += inserted
        stored_seeds.update(row["seed"] for row in rows)
        report.timings["database"] += time.perf_counter() - tick
        if progress is not None:
            progress(report)

    report.level_after = inventory_levels(db)[bucket.key]
    report.seconds = time.perf_counter() - started
    return report


def _face_row(
    face: GeneratedFace,
    reading: Classification,
    label: Bucket,
    key: str,
    digest: str,
    phash: int,
    generator: FaceGenerator,
    classifier: AttributeClassifier,
) -> dict:
    return {
        "gender": label.gender,
        "age_group": label.age_group,
        "status": "available",
        "object_key": key,
        "sha256": digest,
        "phash": to_signed64(phash),
        "width": face.image.width,
        "height": face.image.height,
        "generator": generator.name,
        "seed": face.seed,
        "intended_gender": face.bucket.gender,
        "intended_age_group": face.bucket.age_group,
        "attributes": face.attributes,
        "classifier": classifier.name,
        "face_detected": reading.detected,
        "predicted_gender": reading.gender,
        "gender_confidence": reading.gender_confidence,
        "predicted_age": reading.age,
        "predicted_age_group": reading.age_group,
        "age_confidence": reading.age_confidence,
    }
