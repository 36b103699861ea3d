"""Checks on a Flux LoRA's samples: does it draw its subject, and do they show their prompts?

Identity: dlib face descriptors of the samples against the subject's photos. Each sample's
distance is its mean Euclidean distance to the descriptors of the reference photos (the
subject's prepared photos); the check passes when at least half the samples show a face and
the mean over those is below the threshold. dlib's own rule puts the same person under 0.6
(99.38% on LFW). Measured against five photos of scikit-image's astronaut: a held-out photo of
her 0.24; 91 other people (LFW thumbnails) 0.59-0.94, median 0.80; her own face reduced to such
a thumbnail 0.52; cartoon simulator faces 0.51-0.7, a fifth under 0.6 (tests/test_flux_photos.py).

Prompt relevance: the mean CLIP score (100 x cosine) of each sample against its prompt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synth_pipelines.core.checks.names import FLUX_IDENTITY, PROMPT_RELEVANCE
from synth_pipelines.core.checks.outcome import ERROR, WARN, CheckOutcome
from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.privacy.identity import DEFAULT_THRESHOLD, FaceEmbedder, decode_rgb

# Identity is an error unless the caller lowers it (random tiny test weights draw no face).
SEVERITY = {FLUX_IDENTITY: ERROR, PROMPT_RELEVANCE: WARN}
# CLIP scores of matching image-text pairs mostly land between 25 and 35.
MIN_CLIP_SCORE = 20.0


@dataclass(frozen=True)
class SampleDistances:
    """`per_sample[k]`: sample k's mean distance to the reference photos, None without a face;
    `references`: how many reference photos show a face."""

    per_sample: list[float | None]
    references: int

    @property
    def scored(self) -> list[float]:
        return [d for d in self.per_sample if d is not None]


def _embed_all(embedder: FaceEmbedder, pngs: list[bytes], what: str) -> list[np.ndarray | None]:
    images = []
    for k, data in enumerate(pngs):
        try:
            images.append(decode_rgb(data))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{what} {k} is not an image: {exc}") from exc
    # Only detected faces count: a whole image taken for a face would measure nothing.
    return embedder.embed_batch(images, fallback_full_image=False)


def sample_distances(
    embedder: FaceEmbedder, reference_pngs: list[bytes], sample_pngs: list[bytes]
) -> SampleDistances:
    """Each sample's (encoded image's) mean dlib distance to the subject's reference photos.

    InvalidInputError when there are no samples or references, when no reference photo shows a
    face (the check cannot measure anything), or for bytes that are not an image.
    """
    if not reference_pngs or not sample_pngs:
        raise InvalidInputError(
            f"identity check needs reference photos and samples, got {len(reference_pngs)} "
            f"references and {len(sample_pngs)} samples"
        )
    references = [v for v in _embed_all(embedder, reference_pngs, "reference") if v is not None]
    if not references:
        raise InvalidInputError(
            f"none of the {len(reference_pngs)} reference photos shows a face dlib can find"
        )
    reference = np.stack(references).astype(np.float64)
    per_sample: list[float | None] = []
    for vector in _embed_all(embedder, sample_pngs, "sample"):
        if vector is None:
            per_sample.append(None)
            continue
        distances = np.linalg.norm(reference - vector.astype(np.float64)[None], axis=1)
        per_sample.append(float(distances.mean()))
    return SampleDistances(per_sample, len(references))


def _require_distance(threshold: float) -> None:
    if not math.isfinite(threshold) or threshold <= 0:
        raise InvalidInputError(f"threshold must be a positive distance, got {threshold!r}")


def identity_outcome(
    distances: SampleDistances,
    threshold: float = DEFAULT_THRESHOLD,
    severity: str = SEVERITY[FLUX_IDENTITY],
) -> CheckOutcome:
    """The identity check on measured `distances` (see the module docstring for the rule): a
    sample without a detectable face counts against the half that must show one."""
    _require_distance(threshold)
    scored, total = distances.scored, len(distances.per_sample)
    found, needed = len(scored), math.ceil(total / 2)
    metadata = {"faces_found": found, "threshold": threshold}
    if not scored:
        description = f"no face found in any of the {total} samples"
        return CheckOutcome(FLUX_IDENTITY, False, description, severity, metadata)
    mean = float(np.mean(scored))
    metadata["mean_distance"] = mean
    refs = distances.references
    measured = (
        f"mean dlib distance {mean:.3f} to {refs} reference photo{'s' * (refs != 1)} over the "
        f"{found} of {total} samples with a face (threshold {threshold:g})"
    )
    if found < needed:
        description = f"only {found} of {total} samples show a face, at least {needed} needed; "
        return CheckOutcome(FLUX_IDENTITY, False, description + measured, severity, metadata)
    passed = mean < threshold
    verdict = "the subject" if passed else "not the subject"
    return CheckOutcome(FLUX_IDENTITY, passed, f"{measured}: {verdict}", severity, metadata)


def identity_check(
    embedder: FaceEmbedder,
    reference_pngs: list[bytes],
    sample_pngs: list[bytes],
    threshold: float = DEFAULT_THRESHOLD,
    severity: str = SEVERITY[FLUX_IDENTITY],
) -> CheckOutcome:
    """Score samples against the subject's reference photos: `sample_distances`, then
    `identity_outcome`. With no samples at all, see `no_samples`."""
    _require_distance(threshold)  # before any embedding work
    distances = sample_distances(embedder, reference_pngs, sample_pngs)
    return identity_outcome(distances, threshold, severity)


def no_samples(
    reason: str, threshold: float, severity: str = SEVERITY[FLUX_IDENTITY]
) -> CheckOutcome:
    """The identity check when nothing was rendered to score (`reason` says why)."""
    metadata = {"faces_found": 0, "threshold": threshold}
    return CheckOutcome(FLUX_IDENTITY, False, f"no samples: {reason}", severity, metadata)


def prompt_relevance(scores: list[float]) -> CheckOutcome:
    """Passes when the samples' mean CLIP score against their prompts reaches MIN_CLIP_SCORE."""
    mean = sum(scores) / len(scores) if scores else 0
    return CheckOutcome(
        PROMPT_RELEVANCE,
        passed=bool(scores) and mean >= MIN_CLIP_SCORE,
        description=f"mean CLIP score {mean:.1f} over {len(scores)} samples",
        severity=SEVERITY[PROMPT_RELEVANCE],
        metadata={"mean_clip_score": mean},
    )
