"""Image quality measurements: can it be decoded, is it sharp, is it exposed sensibly, does it
have the expected size and mode; and which images are near-duplicates of each other.

`measure_image` turns encoded bytes into an `ImageQuality` (never raising on bad bytes);
`quality_problems` compares one against `QualityThresholds` and says, in words, what is wrong.
`near_duplicate_pairs` finds pairs of 64-bit perceptual hashes within a Hamming distance.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from synth_pipelines.core.errors import InvalidInputError


@dataclass(frozen=True)
class QualityThresholds:
    """Limits an image must meet. Blur and exposure are measured on the grayscale image.

    `min_blur`: variance of the Laplacian (3x3, 4-neighbour) below which an image is blurry; it
    depends on resolution, so calibrate it for the image size at hand.
    `min_brightness` / `max_brightness`: bounds on the mean gray level, 0..255.
    `max_clipped`: the largest fraction of pixels allowed at exactly 0 or 255.
    `expected_size`: (width, height), or None for any size.
    `expected_mode`: a PIL mode such as "RGB", or None for any mode.
    """

    min_blur: float
    min_brightness: float
    max_brightness: float
    max_clipped: float
    expected_size: tuple[int, int] | None = None
    expected_mode: str | None = "RGB"


# Measured on 2,400 simulator faces at 256 px (PNG): blur 169..943, brightness 34..202, clipped
# at most 0.4%. A GaussianBlur(2) copy scores at most 8.6 and a JPEG q85 copy at least 80, so 40
# catches blurred faces while leaving room for re-encoding; the exposure bounds sit well outside
# the simulator's range and still catch an almost black (< 20) or almost white (> 235) image.
DEFAULT_THRESHOLDS = QualityThresholds(
    min_blur=40.0,
    min_brightness=20.0,
    max_brightness=235.0,
    max_clipped=0.05,
    expected_size=None,
    expected_mode="RGB",
)


@dataclass(frozen=True)
class ImageQuality:
    """What `measure_image` found. Size and mode are after EXIF orientation is applied; the
    measurements are 0 and `error` says why when the bytes could not be decoded."""

    decodable: bool
    width: int
    height: int
    mode: str
    blur: float
    brightness: float
    clipped: float
    error: str | None = None


def measure_image(data: bytes) -> ImageQuality:
    """Decode `data` (any format PIL reads) and measure blur, brightness and clipping.

    Never raises on bad bytes: an empty, truncated or unknown file comes back with
    `decodable=False` and the decoder's reason in `error`. About 2 ms for a 256 px PNG.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidInputError(f"measure_image needs the encoded bytes, got {type(data).__name__}")
    try:
        with warnings.catch_warnings():
            # Warnings about odd files are the decoder's business; the caller gets `error`.
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
            image.load()
            image = ImageOps.exif_transpose(image)
    except Exception as exc:  # PIL's plugins raise many types on malformed bytes; none escape.
        return ImageQuality(False, 0, 0, "", 0.0, 0.0, 0.0, f"{type(exc).__name__}: {exc}")
    gray = np.asarray(image.convert("L"))
    clipped = np.count_nonzero((gray == 0) | (gray == 255)) / max(gray.size, 1)
    return ImageQuality(
        decodable=True,
        width=image.width,
        height=image.height,
        mode=image.mode,
        blur=laplacian_variance(gray),
        brightness=float(gray.mean()) if gray.size else 0.0,
        clipped=float(clipped),
    )


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian of a 2-D gray image (any numeric dtype); 0 below 3x3.

    High for sharp images with edges and texture, near 0 for blurred or flat ones.
    """
    if gray.ndim != 2:
        raise InvalidInputError(f"laplacian_variance needs a 2-D gray image, got {gray.shape}")
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    g = gray.astype(np.float32, copy=False)
    # Shifted slices: the 4-neighbour kernel [[0,1,0],[1,-4,1],[0,1,0]] without a convolution.
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


def quality_problems(q: ImageQuality, t: QualityThresholds) -> list[str]:
    """Human-readable reasons `q` fails `t`, e.g. "blurry: variance of Laplacian 12.3 < 40";
    an empty list when it passes. An undecodable image has exactly one problem."""
    if not q.decodable:
        return [f"not decodable: {q.error or 'unknown error'}"]
    problems = []
    if t.expected_size is not None and (q.width, q.height) != tuple(t.expected_size):
        want_w, want_h = t.expected_size
        problems.append(f"wrong size: {q.width}x{q.height}, expected {want_w}x{want_h}")
    if t.expected_mode is not None and q.mode != t.expected_mode:
        problems.append(f"wrong mode: {q.mode}, expected {t.expected_mode}")
    if q.blur < t.min_blur:
        problems.append(f"blurry: variance of Laplacian {q.blur:.1f} < {t.min_blur:g}")
    if q.brightness < t.min_brightness:
        problems.append(f"too dark: mean gray level {q.brightness:.1f} < {t.min_brightness:g}")
    if q.brightness > t.max_brightness:
        problems.append(f"too bright: mean gray level {q.brightness:.1f} > {t.max_brightness:g}")
    if q.clipped > t.max_clipped:
        problems.append(
            f"clipped: {q.clipped:.1%} of pixels at 0 or 255 > {t.max_clipped:.1%} allowed"
        )
    return problems


def _as_uint64(phashes: np.ndarray | Sequence[int]) -> np.ndarray:
    if not isinstance(phashes, np.ndarray):
        # Python ints straddling 2**63 would make numpy guess float64: convert one by one.
        values = list(phashes)
        if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
            raise InvalidInputError("phashes must be integers (64-bit perceptual hashes)")
        return np.array([int(v) & 0xFFFFFFFFFFFFFFFF for v in values], dtype=np.uint64)
    if phashes.ndim != 1:
        raise InvalidInputError(f"phashes must be a 1-D array of hashes, got shape {phashes.shape}")
    if phashes.dtype == np.int64:
        return phashes.view(np.uint64)  # hashes stored in a signed BIGINT column
    if phashes.dtype == np.uint64 or (phashes.size == 0 and phashes.dtype == np.float64):
        return phashes.astype(np.uint64, copy=False)
    raise InvalidInputError(
        f"phashes must be 64-bit integer hashes (uint64 or int64), got dtype {phashes.dtype}"
    )


_CHUNK = 256  # rows per block: 20 MB of XORs at 10,000 hashes, and faster than larger blocks


def near_duplicate_pairs(
    phashes: np.ndarray | Sequence[int], max_distance: int
) -> list[tuple[int, int, int]]:
    """Every pair (i, j, distance) with i < j whose 64-bit hashes differ in at most
    `max_distance` bits, sorted by (i, j).

    `phashes` holds hashes as `int(str(imagehash.phash(img)), 16)`: uint64, int64 (a signed
    BIGINT column, reinterpreted) or Python ints. Vectorised in row blocks: ~1 s for 10,000.
    """
    if isinstance(max_distance, bool) or not isinstance(max_distance, int | np.integer):
        raise InvalidInputError(f"max_distance must be an integer 0..64, got {max_distance!r}")
    if not 0 <= max_distance <= 64:
        raise InvalidInputError(f"max_distance must be from 0 to 64 bits, got {max_distance}")
    hashes = _as_uint64(phashes)
    n = hashes.size
    pairs: list[tuple[int, int, int]] = []
    for start in range(0, n, _CHUNK):
        rows = hashes[start : start + _CHUNK]
        # Only columns from `start` on: the blocks left of the diagonal were seen already.
        distances = np.bitwise_count(rows[:, None] ^ hashes[None, start:])
        i, j = np.nonzero(distances <= max_distance)
        keep = j > i  # j is relative to `start`, as i is: strictly above the diagonal
        i, j = i[keep], j[keep]
        d = distances[i, j]
        pairs.extend(zip((i + start).tolist(), (j + start).tolist(), d.tolist(), strict=True))
    return pairs


def near_duplicate_rate(n: int, pairs: Sequence[tuple[int, int, int]]) -> float:
    """Fraction of `n` images that are in at least one near-duplicate pair (0.0 when n is 0)."""
    if n < 0:
        raise InvalidInputError(f"n must be >= 0, got {n}")
    if n == 0:
        return 0.0
    members = {i for i, _, _ in pairs} | {j for _, j, _ in pairs}
    if members and (min(members) < 0 or max(members) >= n):
        raise InvalidInputError(f"pairs refer to images outside 0..{n - 1}")
    return len(members) / n
