"""Does a LoRA draw its subject? dlib face descriptors of its samples against the subject's photos.

Each sample's distance is its mean Euclidean distance to the descriptors of the reference photos
(the subject's prepared photos); the check passes when at least half the samples show a face and
the mean over those is below the threshold. dlib's own rule puts the same person under 0.6
(99.38% on LFW). Measured against five photos of scikit-image's astronaut: a held-out photo of
her 0.24; 91 other people (LFW thumbnails) 0.59-0.94, median 0.80; her own face reduced to such
a thumbnail 0.52; cartoon simulator faces 0.51-0.7, a fifth under 0.6 (tests/test_flux_photos.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.privacy.identity import DEFAULT_THRESHOLD, FaceEmbedder, decode_rgb


@dataclass(frozen=True)
class IdentityResult:
    """`per_sample[k]`: sample k's mean distance to the reference photos, None without a face;
    `mean_distance`: over the samples with a face (None if none has one)."""

    mean_distance: float | None
    per_sample: list[float | None]
    faces_found: int
    passed: bool
    description: str


def _embed_all(embedder: FaceEmbedder, pngs: list[bytes], what: str) -> list[np.ndarray | None]:
    images = []
    for k, data in enumerate(pngs):
        try:
            images.append(decode_rgb(data))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{what} {k} is not an image: {exc}") from exc
    # Only detected faces count: a whole image taken for a face would measure nothing.
    return embedder.embed_batch(images, fallback_full_image=False)


def identity_score(
    embedder: FaceEmbedder,
    reference_pngs: list[bytes],
    sample_pngs: list[bytes],
    threshold: float = DEFAULT_THRESHOLD,
) -> IdentityResult:
    """Score samples (encoded images) against the subject's reference photos; see the module
    docstring for the rule. A sample without a detectable face scores None and counts against
    the half that must show one.

    InvalidInputError when there are no samples or references, when no reference photo shows a
    face (the check cannot measure anything), or for bytes that are not an image.
    """
    if not math.isfinite(threshold) or threshold <= 0:
        raise InvalidInputError(f"threshold must be a positive distance, got {threshold!r}")
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
    scored = [d for d in per_sample if d is not None]
    total, found = len(per_sample), len(scored)
    needed = math.ceil(total / 2)
    against = f"{len(references)} reference photo{'s' * (len(references) != 1)}"
    if not scored:
        return IdentityResult(
            None, per_sample, 0, False, f"no face found in any of the {total} samples"
        )
    mean = float(np.mean(scored))
    measured = (
        f"mean dlib distance {mean:.3f} to {against} over the {found} of {total} samples "
        f"with a face (threshold {threshold:g})"
    )
    if found < needed:
        description = f"only {found} of {total} samples show a face, at least {needed} needed; "
        return IdentityResult(mean, per_sample, found, False, description + measured)
    passed = mean < threshold
    verdict = "the subject" if passed else "not the subject"
    return IdentityResult(mean, per_sample, found, passed, f"{measured}: {verdict}")
