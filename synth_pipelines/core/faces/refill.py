"""Refill one inventory bucket: generate, classify, label, deduplicate, store.

`refill_bucket` is the whole of what the `face_inventory` asset does for one partition, with no
Dagster import. The CPU-heavy part of each chunk (`candidates.process_chunk`) can run in worker
processes; results are consumed in chunk order, so the outcome does not depend on the number of
workers. It is idempotent per batch: faces are generated from (batch seed, chunk) with chunk
sizes fixed by the batch's count, so a retried batch regenerates the same faces, finds the ones
an earlier attempt stored, and only adds the rest. Objects are written before their rows, so no
row ever points at a missing object.
"""

from __future__ import annotations

import hashlib
import io
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.faces.candidates import (
    REJECT_DISAGREE,
    REJECT_EXACT_DUP,
    REJECT_NEAR_DUP,
    REJECT_NO_FACE,
    REJECT_OTHER_BUCKET,
    Candidate,
    ChunkRunner,
    ChunkSpec,
    choose_label,
)
from synth_pipelines.core.faces.classification import AttributeClassifier
from synth_pipelines.core.faces.generation import FaceGenerator
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

__all__ = [
    "REJECT_DISAGREE",
    "REJECT_EXACT_DUP",
    "REJECT_NEAR_DUP",
    "REJECT_NO_FACE",
    "REJECT_OTHER_BUCKET",
    "RefillPolicy",
    "RefillReport",
    "choose_label",
    "refill_bucket",
]

LABEL_SOURCES = ("classifier", "generator", "agree")
PREVIEW_FACES = 20


@dataclass(frozen=True)
class RefillPolicy:
    """How faces are labelled, filtered and produced.

    label_source: `classifier` uses the classifier's labels (the generator's when no face is
    detected), `generator` the intended labels, `agree` keeps only faces where both agree.
    """

    label_source: str = "classifier"
    phash_distance: int = 4
    chunk_size: int = 32
    # Stop after this many generated faces per requested face, so a bucket the classifier
    # rarely agrees with cannot spin forever.
    max_attempts_factor: float = 4.0
    # Processes generating and classifying chunks in parallel (1 = in this process); a worker
    # costs ~0.7 s to start (fork, model load), so one is added per this many faces.
    workers: int = 1
    faces_per_worker: int = 50

    def __post_init__(self) -> None:
        if self.label_source not in LABEL_SOURCES:
            raise InvalidInputError(
                f"label_source '{self.label_source}' is not one of: {', '.join(LABEL_SOURCES)}"
            )
        if not 0 <= self.phash_distance <= 64:
            raise InvalidInputError(f"phash_distance {self.phash_distance} is not in 0..64")
        if not 1 <= self.workers <= 64:
            raise InvalidInputError(f"workers {self.workers} is not in 1..64")


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


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integer parts (stable across processes and Python versions)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0] >> 1)


def batch_seed_for(batch_id: str) -> int:
    """A stable integer seed for a batch id (e.g. a Dagster run's root run id)."""
    return int.from_bytes(hashlib.sha256(batch_id.encode()).digest()[:8], "big") >> 1


def object_key_for(bucket: Bucket, digest: str) -> str:
    return f"faces/{bucket.gender}/{bucket.age_group}/{digest}.png"


def chunk_size_for(count: int, policy: RefillPolicy) -> int:
    """Chunk size fixed by the batch's count alone, so a retry on any machine rebuilds the same
    chunks; about four chunks per batch keeps workers busy without much overshoot."""
    return max(1, min(policy.chunk_size, math.ceil(count / 4)))


class _Batch:
    """State of one refill while chunks are consumed in order."""

    def __init__(self, report, count, policy, db, store, generator, classifier, batch_id):
        self.report = report
        self.count = count
        self.policy = policy
        self.db = db
        self.store = store
        self.generator_name = generator.name
        self.classifier_name = classifier.name
        self.batch_id = batch_id
        self.known_hashes = all_phashes(db)
        self.known_digests: set[str] = set()

    def consume(self, bucket: Bucket, candidates: list[Candidate]) -> None:
        """Deduplicate, store and insert a chunk's candidates, stopping once `count` is met."""
        report = self.report
        self.known_digests |= existing_sha256(self.db, [c.sha256 for c in candidates if c.sha256])
        staged: list[tuple[Candidate, str, dict]] = []
        tick = time.perf_counter()
        for candidate in candidates:
            if report.accepted + len(staged) >= self.count:
                break
            report.generated += 1
            if candidate.already_stored:
                report.already_stored += 1
                continue
            report.classified += 1
            reading = candidate.reading
            if reading.detected:
                report.detected += 1
                report.agreed += (reading.gender, reading.age_group) == (
                    candidate.intended.gender,
                    candidate.intended.age_group,
                )
            reason = self._rejection(candidate)
            if reason:
                report.rejected[reason] += 1
                continue
            self.known_digests.add(candidate.sha256)
            self.known_hashes = np.append(self.known_hashes, np.uint64(candidate.phash))
            key = object_key_for(candidate.label, candidate.sha256)
            self.store.put_bytes(key, candidate.png, content_type="image/png")
            staged.append((candidate, key, self._row(candidate, key)))
        report.timings["dedup_and_store"] += time.perf_counter() - tick
        tick = time.perf_counter()
        # The check above is against the inventory as this run last saw it; the insert re-checks
        # against what is committed, so faces a concurrent refill added since cannot be matched.
        outcome = insert_faces(
            self.db, [row for _, _, row in staged], phash_distance=self.policy.phash_distance
        )
        report.timings["database"] += time.perf_counter() - tick
        added = {row["sha256"] for row in outcome.added}
        near = {row["sha256"] for row in outcome.near_duplicates}
        for candidate, key, _ in staged:
            if candidate.sha256 in added:
                report.added += 1
                report.object_keys.append(key)
                if len(report.previews) < PREVIEW_FACES:
                    report.previews.append(Image.open(io.BytesIO(candidate.png)).convert("RGB"))
            elif candidate.sha256 in near:
                # Its object is ours alone (no stored row has its digest): remove it.
                report.rejected[REJECT_NEAR_DUP] += 1
                self.store.delete(key)
            else:
                # A concurrent writer stored the same image between our check and our insert.
                report.rejected[REJECT_EXACT_DUP] += 1

    def _rejection(self, candidate: Candidate) -> str | None:
        if candidate.label is None:
            return candidate.reason or "unknown"
        if candidate.sha256 in self.known_digests:
            return REJECT_EXACT_DUP
        if hamming_min(candidate.phash, self.known_hashes) <= self.policy.phash_distance:
            return REJECT_NEAR_DUP
        return None

    def _row(self, candidate: Candidate, key: str) -> dict:
        reading, label = candidate.reading, candidate.label
        assert label is not None
        return {
            "gender": label.gender,
            "age_group": label.age_group,
            "label_source": self.policy.label_source,
            "status": "available",
            "object_key": key,
            "sha256": candidate.sha256,
            "phash": to_signed64(candidate.phash),
            "width": candidate.width,
            "height": candidate.height,
            "generator": self.generator_name,
            "seed": candidate.seed,
            "batch_id": self.batch_id,
            "intended_gender": candidate.intended.gender,
            "intended_age_group": candidate.intended.age_group,
            "attributes": candidate.attributes,
            "classifier": self.classifier_name,
            "face_detected": reading.detected,
            "predicted_gender": reading.gender,
            "gender_confidence": reading.gender_confidence,
            "predicted_age": reading.age,
            "predicted_age_group": reading.age_group,
            "age_confidence": reading.age_confidence,
        }


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
    batch = _Batch(report, count, policy, db, store, generator, classifier, batch_id)
    max_generated = max(count, int(count * policy.max_attempts_factor))
    chunk_n = chunk_size_for(count, policy)

    pending: deque = deque()
    in_flight = dispatched = next_chunk = 0
    workers = min(policy.workers, max(1, count // policy.faces_per_worker))
    with ChunkRunner(generator, classifier, stored_seeds, workers) as runner:
        while report.accepted < count:
            # Keep every worker busy while what is in flight may still be needed.
            rate = report.acceptance_rate if report.generated else 1.0
            while (
                len(pending) < runner.workers
                and dispatched < max_generated
                and report.accepted + in_flight * rate < count
            ):
                n = min(chunk_n, max_generated - dispatched)
                spec = ChunkSpec(bucket, n, derive_seed(seed, next_chunk), policy.label_source)
                pending.append((n, runner.submit(spec)))
                next_chunk += 1
                dispatched += n
                in_flight += n
            if not pending:
                break
            n, future = pending.popleft()
            in_flight -= n
            candidates, timings = future.result()
            report.timings.update(timings)
            batch.consume(bucket, candidates)
            if progress is not None:
                progress(report)

    report.level_after = inventory_levels(db)[bucket.key]
    report.seconds = time.perf_counter() - started
    return report
