"""Validation of a synthetic image set: quality of its images, fidelity to the real set it was
generated for, and privacy (no real image memorised). Each of the three returns a `CheckReport`.

Inputs, the image sets' contract:
- records: `ImageRecord`s (`quality_report` decodes them; per-image checks are
  `imagecheck.quality`'s, reused).
- features tables: pandas DataFrames read from a features Parquet, one row per image, with `key`,
  `ok` (bool), `error`, the numbers in `NUMERIC_FEATURES`, `phash` (16 hex digits, imagehash's
  64-bit DCT hash), `faces` and `face_boxes`. Only the `ok` rows are measured.
- embeddings: float32 arrays (n x d, L2-normalised), row i for the i-th `ok` row of its table.

Distances between embeddings are cosine distances, 1 - cos(a, b) (0 for the same direction, 2 for
opposite ones); rows are re-normalised here, so an unnormalised array gives the same answer.

A report is `passed=True` / `False`, or `None` when it could not be assessed at all
(`skipped_reason`); single measurements that could not be made are in `skipped` with the reason
(FID without local Inception weights, DCR without a holdout). `blocking=True` marks a failure that
must stop the set from being published (a copied real image).
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import imagehash
import numpy as np
import pandas as pd
from PIL import Image
from scipy.stats import ks_2samp, wasserstein_distance

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.imagecheck.quality import (
    QualityThresholds,
    measure_image,
    near_duplicate_pairs,
    quality_problems,
)
from synth_pipelines.core.imagesets.features import NUMERIC_FEATURES
from synth_pipelines.core.imagesets.records import ImageRecord

FAILING_CAP = 50  # keys (and their reasons) listed in a report; the counts are always complete
FID_NO_WEIGHTS = "FID skipped: no local Inception weights configured (SYNTH_IMAGES_INCEPTION_PATH)"
_CHUNK_CELLS = 1 << 22  # distance-matrix cells computed at once: 32 MB of uint64 XORs


@dataclass(frozen=True)
class Thresholds:
    """Every limit the three reports apply. The defaults suit sets of a few hundred to a few
    thousand images; calibrate the resolution- and model-dependent ones (blur, embedding
    distances, KID) on the real set at hand."""

    # --- quality ---
    min_blur: float = 40.0
    """Variance of the 3x3 Laplacian of the gray image below which an image is blurry. Depends on
    resolution: 40 separates sharp 256 px faces from a GaussianBlur(2) copy."""
    min_brightness: float = 20.0
    """Lowest mean gray level (0..255) before an image is too dark."""
    max_brightness: float = 235.0
    """Highest mean gray level (0..255) before an image is too bright."""
    max_clipped: float = 0.05
    """Largest fraction of an image's pixels at exactly 0 or 255."""
    expected_size: tuple[int, int] | None = None
    """(width, height) every image must have, or None for any size."""
    expected_mode: str | None = "RGB"
    """PIL mode every image must have ("RGB"), or None for any mode."""
    max_bad_share: float = 0.01
    """Largest share of images with at least one per-image problem (undecodable, blurry, badly
    exposed, clipped, wrong size or mode) before the quality report fails."""
    duplicate_distance: int = 2
    """Hamming distance (bits of 64) of perceptual hashes at or under which two images of the set
    are near-duplicates of each other. 2, not the usual 4: in a homogeneous set (400 simulator
    faces, 64-256 px) 4% of distinct images have a neighbour within 4 bits, none within 2 from
    128 px up, while a 0.75x resized JPEG q80 copy moves at most 2 bits (4 at 64 px)."""
    max_duplicate_share: float = 0.01
    """Largest share of images that near-duplicate an earlier image of the set (the ones a
    deduplication would drop)."""

    # --- fidelity ---
    max_wasserstein: Mapping[str, float] = field(
        default_factory=lambda: dict.fromkeys(NUMERIC_FEATURES, 0.25)
    )
    """Per feature, the largest Wasserstein-1 distance between the real and synthetic values,
    divided by the real values' interquartile range (their standard deviation where the IQR is
    0, their |median| or 1 where both are 0, as for a constant width). 0.25 IQR is about a 0.33
    standard-deviation shift of a normal feature; two samples of 100 from one distribution differ
    by about 0.08. A feature missing from the mapping gets 0.25."""
    max_ks: float = 0.2
    """Largest two-sample Kolmogorov-Smirnov statistic D per feature. The statistic, not its
    p-value, is the limit: with thousands of images a negligible difference is significant. The
    alpha=0.05 critical value is 1.36*sqrt(2/n), 0.19 at n=100 per side."""
    prdc_nearest_k: int = 5
    """k of the k-nearest-neighbour balls of precision, recall, density and coverage."""
    min_precision: float = 0.5
    """Least share of synthetic embeddings inside the real manifold (Kynkaanniemi et al. 2019)."""
    min_recall: float = 0.5
    """Least share of real embeddings inside the synthetic manifold."""
    min_density: float = 0.5
    """Least density (Naeem et al. 2020): mean count of real k-NN balls holding a synthetic
    embedding, over k; about 1 when the distributions match."""
    min_coverage: float = 0.5
    """Least share of real embeddings with a synthetic one in their k-NN ball."""
    max_kid: float = 0.05
    """Largest kernel inception distance on the embeddings: the mean unbiased MMD^2 over subsets
    with the cubic kernel (cos(a, b) + 1)^3 (see `kernel_inception_distance`)."""
    max_fid: float = 50.0
    """Largest Frechet Inception distance; applied only where FID can be computed from local
    Inception weights."""

    # --- privacy ---
    max_copy_share: float = 0.0
    """Largest share of synthetic images that copy a real image; above it the privacy report
    fails and blocks publication. 0: a single copy blocks."""
    phash_copy_distance: int = 2
    """Hamming distance of perceptual hashes at or under which a synthetic image is a copy of a
    real one. Resizing and JPEG re-encoding move a phash by 0-2 bits from 128 px (up to 4 at
    64 px), but distinct images of a homogeneous set come within 4 bits (see
    `duplicate_distance`), and a copy blocks: the embedding distance catches the rest."""
    embedding_copy_distance: float = 0.02
    """Cosine distance of embeddings at or under which a synthetic image is a copy of a real one.
    Depends on the embedding model: calibrate it between re-encoded copies and distinct images."""
    copy_requires_both: bool = False
    """False: a synthetic image within either limit (phash or embedding) is a copy. True, with
    embeddings given: only one within both. For homogeneous sets, where distinct images share a
    layout and so a phash: of 1,000 distinct simulator faces against 1,000 others, 9 (128 px)
    to 12 (64 px) are within 2 phash bits of one."""
    min_dcr_share: float = 0.45
    """Least DCR share: of the synthetic images, the share closer to a holdout image (real, never
    shown to the generator) than to a training image (ties count half), training and holdout
    subsampled to the same size. A generator that does not memorise gives about 0.5; one that
    copies its training set, about 0 (Platzer and Reutterer 2021, "Holdout-based fidelity and
    privacy assessment of mixed-type synthetic data")."""
    max_nearest_real_share: float = 0.1
    """Largest share of the synthetic images closer to their nearest real image than the 5th
    percentile of the real images' distances to their nearest other real image: memorisation
    without a holdout (the DCR 5th-percentile comparison of Zhao et al. 2021, CTAB-GAN). A
    generator that does not memorise puts about 0.05 there. Assessed from 100 synthetic and 20
    real images up (below, chance decides it)."""

    def quality(self) -> QualityThresholds:
        """The per-image limits as `imagecheck.quality` takes them."""
        return QualityThresholds(
            min_blur=self.min_blur,
            min_brightness=self.min_brightness,
            max_brightness=self.max_brightness,
            max_clipped=self.max_clipped,
            expected_size=self.expected_size,
            expected_mode=self.expected_mode,
        )

    def wasserstein_limit(self, feature: str) -> float:
        return float(self.max_wasserstein.get(feature, 0.25))

    def subset(self, *names: str) -> dict[str, Any]:
        """The named limits as a JSON-able dict, for a report's `thresholds`."""
        values = asdict(self)
        return {name: _jsonable(values[name]) for name in names}


DEFAULT_THRESHOLDS = Thresholds()
_NEAREST_REAL_MIN_SYNTH = 100
_NEAREST_REAL_MIN_REAL = 20
_BASELINE_SAMPLE = 5000  # real images whose distance to the other real ones is measured


@dataclass
class CheckReport:
    """The outcome of one validation.

    `passed`: True, False, or None when skipped (`skipped_reason` says why). `blocking`: a
    failure that must stop publication. `metrics`: every number measured, flat names
    ("wasserstein.brightness"). `failed_checks`: the metric names beyond their limits;
    `messages`: one sentence per failure naming metric, value and limit. `failing`: keys of the
    failing images, worst first, at most 50, with their reasons in `reasons`. `skipped`: metric
    name -> why it was not measured. `notes`: how a metric was measured (its distance space).
    The quality report's messages also summarise each kind of per-image problem found, whether
    or not its share fails the report.
    `thresholds`: the limits applied.
    """

    name: str
    passed: bool | None
    blocking: bool = False
    skipped_reason: str | None = None
    metrics: dict[str, float | int] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    failing: list[str] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only; a NaN or infinite metric becomes None."""
        return {
            "name": self.name,
            "passed": self.passed,
            "blocking": self.blocking,
            "skipped_reason": self.skipped_reason,
            "metrics": {k: _jsonable(v) for k, v in self.metrics.items()},
            "failed_checks": list(self.failed_checks),
            "messages": list(self.messages),
            "failing": list(self.failing),
            "reasons": {k: list(v) for k, v in self.reasons.items()},
            "skipped": dict(self.skipped),
            "notes": dict(self.notes),
            "thresholds": _jsonable(self.thresholds),
        }

    def summary(self) -> str:
        """One line: the verdict and the first failures."""
        if self.passed is None:
            return f"{self.name}: skipped ({self.skipped_reason})"
        if self.passed:
            return f"{self.name}: passed"
        head = "; ".join(self.messages[:3]) + ("; ..." if len(self.messages) > 3 else "")
        return f"{self.name}: FAILED{' (blocking)' if self.blocking else ''}: {head}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


class _Verdict:
    """Collects metrics and limit comparisons into a `CheckReport`."""

    def __init__(self, name: str) -> None:
        self.report = CheckReport(name=name, passed=True)

    def metric(self, name: str, value: float | int) -> None:
        self.report.metrics[name] = value if isinstance(value, int) else float(value)

    def at_most(self, name: str, value: float, limit: float, limit_name: str) -> bool:
        self.metric(name, value)
        if value > limit:
            self.fail(name, f"{name} {_fmt(value)} > {_fmt(limit)} allowed ({limit_name})")
            return False
        return True

    def at_least(self, name: str, value: float, limit: float, limit_name: str) -> bool:
        self.metric(name, value)
        if value < limit:
            self.fail(name, f"{name} {_fmt(value)} < {_fmt(limit)} required ({limit_name})")
            return False
        return True

    def fail(self, check: str, message: str) -> None:
        self.report.passed = False
        self.report.failed_checks.append(check)
        self.report.messages.append(message)

    def skip(self, name: str, reason: str) -> None:
        self.report.skipped[name] = reason

    def flag(self, key: str, reasons: list[str]) -> None:
        if len(self.report.failing) < FAILING_CAP and key not in self.report.reasons:
            self.report.failing.append(key)
            self.report.reasons[key] = reasons


def _fmt(value: float) -> str:
    return f"{value:.4g}"


# ---------------------------------------------------------------------------------------------
# quality


def quality_report(
    records: Iterable[ImageRecord], thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> CheckReport:
    """Per-image quality (decodes, blur, exposure, clipped pixels, size and mode, by
    `imagecheck.quality`) and near-duplicates within the set (perceptual hashes), in one pass
    over `records` (streamed: only a hash and the problems are kept per image).

    Fails when more than `max_bad_share` of the images have a problem, or more than
    `max_duplicate_share` near-duplicate an earlier image. Raises InvalidInputError on no records.
    """
    limits = thresholds.quality()
    keys: list[str] = []
    hashes: list[int] = []
    hashed: list[int] = []  # index into keys of each hash
    problems: dict[int, list[str]] = {}
    counts = dict.fromkeys(_PROBLEM_KINDS, 0)
    for record in records:
        index = len(keys)
        keys.append(record.key)
        found = quality_problems(measure_image(record.data), limits)
        if found:
            problems[index] = found
            for problem in found:
                counts[problem.split(":", 1)[0]] += 1
        phash = None if found[:1] and found[0].startswith("not decodable") else _phash_of(record)
        if phash is not None:
            hashes.append(phash)
            hashed.append(index)
    if not keys:
        raise InvalidInputError("quality_report got no records: an empty image set")

    pairs = near_duplicate_pairs(np.array(hashes, dtype=np.uint64), thresholds.duplicate_distance)
    duplicate_of: dict[int, tuple[int, int]] = {}
    for i, j, distance in pairs:
        later, earlier = hashed[j], hashed[i]
        if later not in duplicate_of:
            duplicate_of[later] = (earlier, distance)

    verdict = _Verdict("quality")
    n = len(keys)
    verdict.metric("images", n)
    for kind, count in counts.items():
        verdict.metric(f"{kind.replace(' ', '_')}_images", count)
    verdict.metric("bad_images", len(problems))
    verdict.at_most("bad_share", len(problems) / n, thresholds.max_bad_share, "max_bad_share")
    verdict.metric("duplicate_pairs", len(pairs))
    verdict.metric("duplicate_images", len(duplicate_of))
    share = len(duplicate_of) / n
    verdict.at_most("duplicate_share", share, thresholds.max_duplicate_share, "max_duplicate_share")
    _flag_quality(verdict, keys, problems, duplicate_of, thresholds.duplicate_distance)
    verdict.report.thresholds = thresholds.subset(
        "min_blur",
        "min_brightness",
        "max_brightness",
        "max_clipped",
        "expected_size",
        "expected_mode",
        "max_bad_share",
        "duplicate_distance",
        "max_duplicate_share",
    )
    return verdict.report


# The first word(s) of each of quality_problems' reasons, before the colon.
_PROBLEM_KINDS = (
    "not decodable",
    "wrong size",
    "wrong mode",
    "blurry",
    "too dark",
    "too bright",
    "clipped",
)


def _phash_of(record: ImageRecord) -> int | None:
    """imagehash's 64-bit phash of the decoded image; None where it cannot be computed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(record.data))
            return int(str(imagehash.phash(image.convert("L"))), 16)
    except Exception:  # measure_image decoded it; a failure here only leaves it unhashed
        return None


def _flag_quality(
    verdict: _Verdict,
    keys: list[str],
    problems: dict[int, list[str]],
    duplicate_of: dict[int, tuple[int, int]],
    max_distance: int,
) -> None:
    for index in sorted(set(problems) | set(duplicate_of)):
        reasons = list(problems.get(index, []))
        if index in duplicate_of:
            earlier, distance = duplicate_of[index]
            reasons.append(
                f"near-duplicate of {keys[earlier]}: phash distance {distance} <= {max_distance}"
            )
        verdict.flag(keys[index], reasons)
    kinds: dict[str, list[str]] = {}
    for index, found in problems.items():
        for problem in found:
            kinds.setdefault(problem.split(":", 1)[0], []).append(f"{keys[index]} ({problem})")
    for kind, examples in kinds.items():
        verdict.report.messages.append(
            f"{kind}: {len(examples)} of {len(keys)} images, e.g. {'; '.join(examples[:3])}"
        )
    if duplicate_of:
        examples = [f"{keys[j]} ~ {keys[i]} ({d} bits)" for j, (i, d) in duplicate_of.items()]
        verdict.report.messages.append(
            f"near-duplicates: {len(duplicate_of)} of {len(keys)} images, e.g. "
            + "; ".join(examples[:3])
        )


# ---------------------------------------------------------------------------------------------
# fidelity


def fidelity_report(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    real_emb: np.ndarray | None,
    synth_emb: np.ndarray | None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    *,
    inception: tuple[np.ndarray, np.ndarray] | str | None = None,
) -> CheckReport:
    """How closely the synthetic set matches the real one.

    Per feature of `NUMERIC_FEATURES`: the normalised Wasserstein-1 distance and the KS
    statistic of the ok rows' values. On the embeddings: precision, recall, density and coverage
    (the `prdc` package, k = `prdc_nearest_k`) and KID. FID from `inception`, the (real,
    synthetic) Inception pool features (see `embeddings.InceptionFeatures`); None (no local
    Inception weights configured) or a string (why the features are missing) skips it with the
    reason. Embeddings of None skip the embedding metrics with the reason.
    """
    real_ok, synth_ok = _ok_rows(real, "real"), _ok_rows(synth, "synthetic")
    verdict = _Verdict("fidelity")
    verdict.metric("real_images", len(real_ok))
    verdict.metric("synthetic_images", len(synth_ok))
    for feature in NUMERIC_FEATURES:
        _feature_distances(verdict, feature, real_ok, synth_ok, thresholds)
    if real_emb is None or synth_emb is None:
        reason = "no embeddings given for the real and the synthetic set"
        for name in ("precision", "recall", "density", "coverage", "kid"):
            verdict.skip(name, reason)
    else:
        r = _unit_rows(real_emb, len(real_ok), "real")
        s = _unit_rows(synth_emb, len(synth_ok), "synthetic")
        _manifold_metrics(verdict, r, s, thresholds)
        _kid(verdict, r, s, thresholds)
    _fid(verdict, inception, thresholds)
    verdict.report.thresholds = thresholds.subset(
        "max_wasserstein",
        "max_ks",
        "prdc_nearest_k",
        "min_precision",
        "min_recall",
        "min_density",
        "min_coverage",
        "max_kid",
        "max_fid",
    )
    return verdict.report


def _ok_rows(table: pd.DataFrame, name: str) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise InvalidInputError(
            f"the {name} features table must be a pandas DataFrame, got {type(table).__name__}"
        )
    missing = [c for c in ("key", "ok") if c not in table.columns]
    if missing:
        raise InvalidInputError(f"the {name} features table has no column {', '.join(missing)}")
    ok = table[table["ok"].fillna(False).astype(bool)].reset_index(drop=True)
    if ok.empty:
        raise InvalidInputError(f"the {name} features table has no ok rows to compare")
    return ok


def normalised_wasserstein(real: np.ndarray, synth: np.ndarray) -> float:
    """Wasserstein-1 distance between two 1-D samples in units of the real sample's spread: its
    interquartile range, else its standard deviation, else max(|median|, 1)."""
    q1, median, q3 = np.percentile(real, [25, 50, 75])
    scale = q3 - q1
    if scale <= 0:
        scale = float(np.std(real))
    if scale <= 0:
        scale = max(abs(float(median)), 1.0)
    return float(wasserstein_distance(real, synth) / scale)


def _feature_distances(
    verdict: _Verdict,
    feature: str,
    real: pd.DataFrame,
    synth: pd.DataFrame,
    thresholds: Thresholds,
) -> None:
    for table, name in ((real, "real"), (synth, "synthetic")):
        if feature not in table.columns:
            raise InvalidInputError(f"the {name} features table has no column {feature!r}")
    r = pd.to_numeric(real[feature], errors="coerce").dropna().to_numpy(np.float64)
    s = pd.to_numeric(synth[feature], errors="coerce").dropna().to_numpy(np.float64)
    if len(r) < 2 or len(s) < 2:
        reason = f"fewer than 2 values of {feature} (real {len(r)}, synthetic {len(s)})"
        verdict.skip(f"wasserstein.{feature}", reason)
        verdict.skip(f"ks.{feature}", reason)
        return
    limit = thresholds.wasserstein_limit(feature)
    verdict.at_most(
        f"wasserstein.{feature}",
        normalised_wasserstein(r, s),
        limit,
        f"max_wasserstein[{feature!r}], in real IQRs",
    )
    ks = ks_2samp(r, s)
    verdict.at_most(f"ks.{feature}", float(ks.statistic), thresholds.max_ks, "max_ks")
    verdict.metric(f"ks_pvalue.{feature}", float(ks.pvalue))


def _unit_rows(embeddings: np.ndarray, rows: int, name: str) -> np.ndarray:
    """`embeddings` as float32 rows of length 1, checked against the table's ok row count."""
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise InvalidInputError(
            f"the {name} embeddings must be a non-empty 2-D array (n x d), got shape {array.shape}"
        )
    if array.shape[0] != rows:
        raise InvalidInputError(
            f"the {name} embeddings have {array.shape[0]} rows but the {name} features table "
            f"has {rows} ok rows: the embeddings must be aligned with the ok rows"
        )
    if not np.isfinite(array).all():
        raise InvalidInputError(f"the {name} embeddings hold NaN or infinite values")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InvalidInputError(f"the {name} embeddings have an all-zero row")
    return array / norms


_PRDC_MAX_SAMPLES = 5000  # per side: prdc holds three n x n distance matrices


def _manifold_metrics(
    verdict: _Verdict, real: np.ndarray, synth: np.ndarray, thresholds: Thresholds
) -> None:
    k = thresholds.prdc_nearest_k
    if min(len(real), len(synth)) <= k + 1:  # each point's k-th neighbour besides itself
        reason = f"precision/recall need more than k+1={k + 1} embeddings per set"
        for name in ("precision", "recall", "density", "coverage"):
            verdict.skip(name, f"{reason} (real {len(real)}, synthetic {len(synth)})")
        return
    import prdc  # imported here: only this measurement needs it

    rng = np.random.default_rng(0)
    r, s = _subsample(real, _PRDC_MAX_SAMPLES, rng), _subsample(synth, _PRDC_MAX_SAMPLES, rng)
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the sample counts
        values = prdc.compute_prdc(real_features=r, fake_features=s, nearest_k=k)
    verdict.at_least("precision", values["precision"], thresholds.min_precision, "min_precision")
    verdict.at_least("recall", values["recall"], thresholds.min_recall, "min_recall")
    verdict.at_least("density", values["density"], thresholds.min_density, "min_density")
    verdict.at_least("coverage", values["coverage"], thresholds.min_coverage, "min_coverage")


def _subsample(rows: np.ndarray, at_most: int, rng: np.random.Generator) -> np.ndarray:
    if len(rows) <= at_most:
        return rows
    return rows[np.sort(rng.choice(len(rows), at_most, replace=False))]


def kernel_inception_distance(
    real: np.ndarray,
    synth: np.ndarray,
    *,
    n_subsets: int = 100,
    subset_size: int = 1000,
    max_samples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (Binkowski et al. 2018): mean and standard deviation over `n_subsets` random subsets
    of the unbiased MMD^2 between the two sets of embeddings, with the cubic polynomial kernel.

    The kernel is the standard (a.b/d + 1)^3 applied to the rows scaled to norm sqrt(d), which is
    (cos(a, b) + 1)^3: independent of the dimension and of how the rows are normalised. A subset
    has min(`subset_size`, half the smaller set) rows of each side, so that the subsets differ;
    sets larger than `max_samples` are first subsampled to it (the kernel matrices are computed
    once, n x n). About 0 for one distribution, larger the further apart the two are.
    """
    x = _unit_rows(real, len(real), "real")
    y = _unit_rows(synth, len(synth), "synthetic")
    if min(len(x), len(y)) < 4:
        raise InvalidInputError(
            f"KID needs at least 4 embeddings per set, got {len(x)} real and {len(y)} synthetic"
        )
    rng = np.random.default_rng(seed)
    x, y = _subsample(x, max_samples, rng), _subsample(y, max_samples, rng)
    m = min(subset_size, min(len(x), len(y)) // 2)
    kxx = _cubic_kernel(x, x)
    kyy = _cubic_kernel(y, y)
    kxy = _cubic_kernel(x, y)
    sx = _subset_indicators(len(x), m, n_subsets, rng)
    sy = _subset_indicators(len(y), m, n_subsets, rng)
    # s^T K s sums a subset's kernel block; the diagonal is taken out for the unbiased terms.
    within_x = np.einsum("is,is->s", sx, kxx @ sx) - np.diag(kxx) @ sx
    within_y = np.einsum("is,is->s", sy, kyy @ sy) - np.diag(kyy) @ sy
    across = np.einsum("is,is->s", sx, kxy @ sy)
    mmd = (within_x + within_y) / (m * (m - 1)) - 2.0 * across / (m * m)
    return float(mmd.mean()), float(mmd.std())


def _cubic_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.asarray(a @ b.T, dtype=np.float64) + 1.0) ** 3


def _subset_indicators(n: int, m: int, subsets: int, rng: np.random.Generator) -> np.ndarray:
    """n x subsets matrix of 0/1: column s marks the m rows of subset s (without replacement)."""
    indicators = np.zeros((n, subsets), dtype=np.float64)
    for s in range(subsets):
        indicators[rng.choice(n, m, replace=False), s] = 1.0
    return indicators


def _kid(verdict: _Verdict, real: np.ndarray, synth: np.ndarray, thresholds: Thresholds) -> None:
    if min(len(real), len(synth)) < 4:
        verdict.skip(
            "kid", f"KID needs 4 embeddings per set (real {len(real)}, synthetic {len(synth)})"
        )
        return
    mean, std = kernel_inception_distance(real, synth)
    verdict.at_most("kid", mean, thresholds.max_kid, "max_kid")
    verdict.metric("kid_std", std)


def frechet_distance(real: np.ndarray, synth: np.ndarray) -> float:
    """The Frechet distance of two Gaussians fitted to the rows of `real` and `synth`:
    |mu_r - mu_s|^2 + Tr(S_r + S_s - 2 (S_r S_s)^(1/2)) (Heusel et al. 2017), the FID on
    Inception pool features. A singular product gets a small diagonal offset first, as the
    reference implementations do; the imaginary residue of sqrtm is dropped."""
    from scipy import linalg

    real, synth = np.asarray(real, np.float64), np.asarray(synth, np.float64)
    mu_r, mu_s = real.mean(axis=0), synth.mean(axis=0)
    cov_r, cov_s = np.cov(real, rowvar=False), np.cov(synth, rowvar=False)
    root, _ = linalg.sqrtm(cov_r @ cov_s, disp=False)
    if not np.isfinite(root).all():
        offset = np.eye(len(cov_r)) * 1e-6
        root = linalg.sqrtm((cov_r + offset) @ (cov_s + offset))
    root = np.real(root)
    diff = mu_r - mu_s
    return float(diff @ diff + np.trace(cov_r) + np.trace(cov_s) - 2.0 * np.trace(root))


def _fid(
    verdict: _Verdict,
    inception: tuple[np.ndarray, np.ndarray] | str | None,
    thresholds: Thresholds,
) -> None:
    if inception is None:
        verdict.skip("fid", FID_NO_WEIGHTS)
        return
    if isinstance(inception, str):
        verdict.skip("fid", inception)
        return
    real, synth = inception
    if min(len(real), len(synth)) < 2:
        verdict.skip(
            "fid", f"FID needs 2 images per set (real {len(real)}, synthetic {len(synth)})"
        )
        return
    verdict.at_most("fid", frechet_distance(real, synth), thresholds.max_fid, "max_fid")


# ---------------------------------------------------------------------------------------------
# privacy


def privacy_report(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    real_emb: np.ndarray | None,
    synth_emb: np.ndarray | None,
    *,
    holdout_emb: np.ndarray | None = None,
    holdout: pd.DataFrame | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> CheckReport:
    """Memorisation of real (training) images by the synthetic set.

    For each synthetic image: the minimum phash Hamming distance to any real image and the
    cosine distance to its nearest real embedding. A synthetic image within
    `phash_copy_distance` or `embedding_copy_distance` of a real one is a copy (within both,
    with `copy_requires_both`); more than `max_copy_share` copies (default: any) is a blocking
    failure naming them. Also the share of synthetic images nearer a real image than real
    images are to each other (5th percentile), and the DCR share against a real holdout
    (`holdout_emb`, rows aligned with the `holdout` table's ok rows when it is given too; else
    the `holdout` table's phashes; skipped without either). Embeddings of None: phash only.
    Costs O(n_synth x n_real) distance computations, in bounded blocks.
    """
    real_ok, synth_ok = _ok_rows(real, "real"), _ok_rows(synth, "synthetic")
    real_keys, synth_keys = real_ok["key"].astype(str), synth_ok["key"].astype(str)
    verdict = _Verdict("privacy")
    verdict.metric("real_images", len(real_ok))
    verdict.metric("synthetic_images", len(synth_ok))

    real_hashes, synth_hashes = _hashes(real_ok, "real"), _hashes(synth_ok, "synthetic")
    phash_min, phash_arg = nearest_hamming(synth_hashes, real_hashes)
    verdict.metric("phash_distance_min", int(phash_min.min()))
    verdict.metric("phash_distance_median", float(np.median(phash_min)))
    copies = phash_min <= thresholds.phash_copy_distance
    emb_min = emb_arg = None
    r = s = None
    if real_emb is None or synth_emb is None:
        verdict.skip("embedding_distance", "no embeddings given: copies found by phash only")
    else:
        r = _unit_rows(real_emb, len(real_ok), "real")
        s = _unit_rows(synth_emb, len(synth_ok), "synthetic")
        emb_min, emb_arg = nearest_cosine(s, r)
        verdict.metric("embedding_distance_min", float(emb_min.min()))
        verdict.metric("embedding_distance_median", float(np.median(emb_min)))
        by_embedding = emb_min <= thresholds.embedding_copy_distance
        copies = (copies & by_embedding) if thresholds.copy_requires_both else copies | by_embedding

    _copies(
        verdict, copies, synth_keys, real_keys, phash_min, phash_arg, emb_min, emb_arg, thresholds
    )
    # The real images' own nearest-neighbour distances: a sample of them is enough for a
    # 5th percentile, and keeps this O(n_real) rather than O(n_real^2) on large sets.
    sample = _subsample(np.arange(len(real_ok)), _BASELINE_SAMPLE, np.random.default_rng(0))
    if emb_min is not None:
        real_self = nearest_cosine(r[sample], r, exclude=sample)[0]
        nearest = _Nearest("embedding cosine distance", emb_min, emb_arg, real_self)
    else:
        real_self = nearest_hamming(real_hashes[sample], real_hashes, exclude=sample)[0]
        nearest = _Nearest("phash Hamming distance", phash_min, phash_arg, real_self)
    _nearest_real_share(verdict, nearest, synth_keys, real_keys, thresholds)
    _dcr(verdict, thresholds, s, r, synth_hashes, real_hashes, holdout_emb, holdout)
    verdict.report.thresholds = thresholds.subset(
        "max_copy_share",
        "phash_copy_distance",
        "embedding_copy_distance",
        "copy_requires_both",
        "min_dcr_share",
        "max_nearest_real_share",
    )
    return verdict.report


def _hashes(table: pd.DataFrame, name: str) -> np.ndarray:
    """The `phash` column (16 hex digits per ok row) as uint64, vectorised through bytes."""
    if "phash" not in table.columns:
        raise InvalidInputError(f"the {name} features table has no column 'phash'")
    values = table["phash"].tolist()
    bad = [i for i, v in enumerate(values) if not (isinstance(v, str) and len(v) == 16)]
    if bad:
        raise InvalidInputError(
            f"the {name} features table's phash of {table['key'].iloc[bad[0]]!r} is "
            f"{values[bad[0]]!r}: expected 16 hex digits (imagehash's 64-bit phash)"
        )
    try:
        raw = bytes.fromhex("".join(values))
    except ValueError as exc:
        raise InvalidInputError(
            f"the {name} features table has a phash that is not hex: {exc}"
        ) from exc
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64)


def _chunk_rows(n_columns: int) -> int:
    return max(1, _CHUNK_CELLS // max(n_columns, 1))


def _check_exclude(queries: np.ndarray, reference: np.ndarray, exclude: np.ndarray | None) -> None:
    need = 1 if exclude is None else 2
    if len(reference) < need:
        raise InvalidInputError(
            f"a nearest-neighbour search needs {need} reference rows or more, got {len(reference)}"
        )
    if exclude is not None and np.shape(exclude) != (len(queries),):
        raise InvalidInputError(
            f"exclude needs one reference index per query ({len(queries)}), "
            f"got shape {np.shape(exclude)}"
        )


def nearest_hamming(
    queries: np.ndarray, reference: np.ndarray, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For each 64-bit hash of `queries` (uint64), the least Hamming distance to a hash of
    `reference` and the index of that hash. `exclude`: per query, a reference index to skip
    (its own, when the queries are reference rows). Vectorised XOR + bit count, in row blocks
    of at most 4M cells, so memory stays bounded whatever the set sizes."""
    queries = np.asarray(queries, dtype=np.uint64)
    reference = np.asarray(reference, dtype=np.uint64)
    _check_exclude(queries, reference, exclude)
    distance = np.empty(queries.size, dtype=np.int64)
    index = np.empty(queries.size, dtype=np.int64)
    step = _chunk_rows(reference.size)
    for start in range(0, queries.size, step):
        bits = np.bitwise_count(queries[start : start + step, None] ^ reference[None, :])
        if exclude is not None:
            bits[np.arange(len(bits)), exclude[start : start + step]] = 65  # beyond any 2 hashes
        index[start : start + step] = bits.argmin(axis=1)
        distance[start : start + step] = bits.min(axis=1)
    return distance, index


def nearest_cosine(
    queries: np.ndarray, reference: np.ndarray, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of `queries`, the least cosine distance (1 - cos) to a row of `reference`
    and that row's index; both arrays of unit rows. `exclude`: per query, a reference index to
    skip (its own, when the queries are reference rows). In row blocks of at most 4M cells."""
    _check_exclude(queries, reference, exclude)
    distance = np.empty(len(queries), dtype=np.float64)
    index = np.empty(len(queries), dtype=np.int64)
    step = _chunk_rows(len(reference))
    for start in range(0, len(queries), step):
        similarity = queries[start : start + step] @ reference.T
        if exclude is not None:
            similarity[np.arange(len(similarity)), exclude[start : start + step]] = -np.inf
        best = similarity.argmax(axis=1)
        index[start : start + step] = best
        distance[start : start + step] = 1.0 - similarity[np.arange(len(best)), best]
    return np.maximum(distance, 0.0), index


def _copies(
    verdict: _Verdict,
    copies: np.ndarray,
    synth_keys: pd.Series,
    real_keys: pd.Series,
    phash_min: np.ndarray,
    phash_arg: np.ndarray,
    emb_min: np.ndarray | None,
    emb_arg: np.ndarray | None,
    t: Thresholds,
) -> None:
    n_copies = int(copies.sum())
    verdict.metric("copies", n_copies)
    if verdict.at_most("copy_share", n_copies / len(copies), t.max_copy_share, "max_copy_share"):
        return
    verdict.report.blocking = True
    order = np.flatnonzero(copies)
    closeness = (
        phash_min[order] / 64.0
        if emb_min is None
        else np.minimum(phash_min[order] / 64.0, emb_min[order])
    )
    order = order[np.argsort(closeness, kind="stable")]
    for i in order[:FAILING_CAP]:
        reasons = []
        if phash_min[i] <= t.phash_copy_distance:
            reasons.append(
                f"copy of real {real_keys.iloc[phash_arg[i]]}: phash distance {phash_min[i]} "
                f"<= {t.phash_copy_distance}"
            )
        if emb_min is not None and emb_min[i] <= t.embedding_copy_distance:
            reasons.append(
                f"copy of real {real_keys.iloc[emb_arg[i]]}: embedding cosine distance "
                f"{emb_min[i]:.4f} <= {t.embedding_copy_distance:g}"
            )
        verdict.flag(synth_keys.iloc[i], reasons)
    named = ", ".join(verdict.report.failing[:5])
    verdict.report.messages[-1] += f": {n_copies} synthetic images copy real ones ({named}"
    verdict.report.messages[-1] += ", ...)" if n_copies > 5 else ")"


@dataclass(frozen=True)
class _Nearest:
    """Each synthetic image's distance to its nearest real image (and that image's index), and
    each real image's distance to its nearest other real image, in one space."""

    space: str
    synth_to_real: np.ndarray
    nearest_real: np.ndarray
    real_to_real: np.ndarray


def _nearest_real_share(
    verdict: _Verdict,
    nearest: _Nearest,
    synth_keys: pd.Series,
    real_keys: pd.Series,
    t: Thresholds,
) -> None:
    n_synth, n_real = len(nearest.synth_to_real), len(nearest.real_to_real)
    if n_synth < _NEAREST_REAL_MIN_SYNTH or n_real < _NEAREST_REAL_MIN_REAL:
        verdict.skip(
            "nearest_real_share",
            f"needs {_NEAREST_REAL_MIN_SYNTH} synthetic and {_NEAREST_REAL_MIN_REAL} real images "
            f"(got {n_synth} and {n_real}): below, chance decides the share",
        )
        return
    real_p5 = float(np.percentile(nearest.real_to_real, 5))
    close = nearest.synth_to_real < real_p5
    verdict.report.notes["nearest_real_share"] = nearest.space
    verdict.metric("real_nearest_real_p5", real_p5)
    share = float(close.mean())
    limit = t.max_nearest_real_share
    if verdict.at_most("nearest_real_share", share, limit, "max_nearest_real_share"):
        return
    verdict.report.messages[-1] += (
        f": {int(close.sum())} synthetic images are nearer a real image than 95% of real images "
        f"are to another ({nearest.space} < {real_p5:.4g})"
    )
    order = np.flatnonzero(close)[np.argsort(nearest.synth_to_real[close], kind="stable")]
    for i in order[:FAILING_CAP]:
        real_key = real_keys.iloc[nearest.nearest_real[i]]
        verdict.flag(
            synth_keys.iloc[i],
            [
                f"near real {real_key}: {nearest.space} {nearest.synth_to_real[i]:.4g} < "
                f"{real_p5:.4g}, the real images' 5th percentile to each other"
            ],
        )


_DCR_MIN_SAMPLE = 20  # holdout images (and synthetic ones) for a DCR share worth judging


def _dcr(
    verdict: _Verdict,
    t: Thresholds,
    synth_emb: np.ndarray | None,
    real_emb: np.ndarray | None,
    synth_hashes: np.ndarray,
    real_hashes: np.ndarray,
    holdout_emb: np.ndarray | None,
    holdout: pd.DataFrame | None,
) -> None:
    rng = np.random.default_rng(0)
    if holdout_emb is not None and synth_emb is not None and real_emb is not None:
        rows = len(_ok_rows(holdout, "holdout")) if holdout is not None else len(holdout_emb)
        held = _unit_rows(holdout_emb, rows, "holdout")
        verdict.report.notes["dcr_share"] = "embedding cosine distance"
        train, held = _same_size(real_emb, held, rng)
        share, below_p5 = dcr_share(synth_emb, train, held, nearest_cosine)
    elif holdout is not None:
        held = _hashes(_ok_rows(holdout, "holdout"), "holdout")
        verdict.report.notes["dcr_share"] = "phash Hamming distance"
        train, held = _same_size(real_hashes, held, rng)
        share, below_p5 = dcr_share(synth_hashes, train, held, nearest_hamming)
    elif holdout_emb is not None:
        verdict.skip(
            "dcr_share",
            "DCR skipped: holdout embeddings given, but no real and synthetic embeddings",
        )
        return
    else:
        verdict.skip("dcr_share", "DCR skipped: no real holdout given (holdout_emb or holdout)")
        return
    verdict.metric("dcr_sample_size", len(train))
    if len(train) < _DCR_MIN_SAMPLE or len(synth_hashes) < _DCR_MIN_SAMPLE:
        verdict.skip(
            "dcr_share",
            f"DCR needs {_DCR_MIN_SAMPLE} holdout and {_DCR_MIN_SAMPLE} synthetic images (got "
            f"{len(train)} and {len(synth_hashes)}): below, chance decides the share",
        )
        return
    verdict.at_least("dcr_share", share, t.min_dcr_share, "min_dcr_share")
    verdict.metric("dcr_below_holdout_p5_share", below_p5)


def _same_size(
    train: np.ndarray, held: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    n = min(len(train), len(held))
    return _subsample(train, n, rng), _subsample(held, n, rng)


def dcr_share(
    synth: np.ndarray,
    train: np.ndarray,
    holdout: np.ndarray,
    nearest: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> tuple[float, float]:
    """(DCR share, share below the holdout's 5th percentile).

    DCR share: of the `synth` rows, the share whose distance to the closest `holdout` row is
    smaller than to the closest `train` row, ties counted half; about 0.5 when nothing is
    memorised and `train` and `holdout` are the same size, about 0 for copies of `train`.
    The second number: the share of `synth` rows closer to `train` than the 5th percentile of the
    holdout rows' own distances to `train` (about 0.05 when nothing is memorised).
    `nearest` is `nearest_cosine` or `nearest_hamming`.
    """
    to_train, _ = nearest(synth, train)
    to_holdout, _ = nearest(synth, holdout)
    share = float(np.mean((to_holdout < to_train) + 0.5 * (to_holdout == to_train)))
    holdout_p5 = float(np.percentile(nearest(holdout, train)[0], 5))
    return share, float(np.mean(to_train < holdout_p5))
