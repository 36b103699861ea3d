"""What one image measures: size, colour, exposure, sharpness, noise, JPEG quality, EXIF, a
perceptual hash, faces and text, and a fixed-length descriptor (`embed`) for comparing images.

- `safe_open(data)` decodes image bytes or raises `InvalidInputError` with the reason: a corrupt
  or truncated file, or a decompression bomb (refused from its header, before any decoding).
- `measure(record)` returns one flat dict per image, the columns of the features Parquet:
  width, height, aspect, mode, channels, format, bytes, jpeg_quality, brightness, contrast,
  colourfulness, sharpness, noise, dominant_colours (JSON), phash, exif (JSON), has_gps, faces,
  face_boxes (JSON), text, text_skipped. The numeric ones read by validation and generation
  are `NUMERIC_FEATURES`: their names stay.
- `embed(image)` returns an L2-normalised float32 vector of `EMBEDDING_DIM` values built from
  an HSV colour histogram, a HOG and two LBP texture histograms of a 64x64 copy: no weights.
- `analyse(record)` is both from one decoding (what profiling calls).

Images whose long side passes `WORK_SIDE` are measured on a copy reduced to it, so that the
pixel statistics (sharpness, noise) are comparable across resolutions and a large photo costs
about as much as a small one; JPEGs over `FACE_SIDE` are decoded at a reduced DCT scale
straight away. `width` and `height` are always the original's, and so are face boxes. Faces are
looked for at up to `FACE_SIDE` pixels.
"""

from __future__ import annotations

import functools
import io
import json
import shutil
import threading
import warnings
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from synth_pipelines.core.errors import InvalidInputError, MissingBackendError
from synth_pipelines.core.imagesets.records import ImageRecord

NUMERIC_FEATURES = (
    "width",
    "height",
    "aspect",
    "brightness",
    "contrast",
    "colourfulness",
    "sharpness",
    "noise",
)
MAX_PIXELS = 64_000_000
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601
WORK_SIDE = 512  # pixel statistics are measured at most at this long side
FACE_SIDE = 1024  # faces are looked for at most at this long side
EMBED_SIDE = 64
TEXT_LIMIT = 2000  # characters of OCR text kept per image
EXIF_FIELDS = {
    0x010F: "Make",
    0x0110: "Model",
    0x0131: "Software",
    0x0132: "DateTime",
    0x0112: "Orientation",
    0x8298: "Copyright",
}
GPS_IFD = 0x8825

# IJG's base quantization tables (JPEG standard, Annex K), in natural (row-major) order.
_LUMA_TABLE = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.float64,
)  # fmt: skip
_CHROMA_TABLE = np.array(
    [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
     24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32,
    dtype=np.float64,
)  # fmt: skip


# --- decoding --------------------------------------------------------------------------------


def safe_open(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The decoded image of `data`. Raises InvalidInputError when its header claims more than
    `max_pixels` pixels (a decompression bomb, refused before decoding) or when it is not an
    image, is corrupt or is truncated, with the reason."""
    image, _ = _decode(data, max_pixels, draft_side=None)
    return image


def _decode(
    data: bytes, max_pixels: int, draft_side: int | None
) -> tuple[Image.Image, tuple[int, int]]:
    """The decoded image and the original (width, height). With `draft_side`, a JPEG larger
    than that is decoded at the smallest DCT scale that keeps its long side >= draft_side."""
    if not data:
        raise InvalidInputError("not an image: the file is empty")
    try:
        image = _open_header(data)
        size = image.size
        _refuse_bomb(size, max_pixels)
        if draft_side and image.format == "JPEG" and max(size) > draft_side:
            image.draft(image.mode, (draft_side, draft_side))
        image.load()
    except InvalidInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InvalidInputError(f"refused as a decompression bomb: {error}") from None
    except Image.UnidentifiedImageError:
        raise InvalidInputError("not an image: no known image format in its header") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as error:
        reason = str(error) or type(error).__name__
        if "truncated" in reason.lower():
            raise InvalidInputError(f"truncated image: {reason}") from None
        raise InvalidInputError(f"corrupt image: {reason}") from None
    return image, size


_OPEN_LOCK = threading.Lock()


def _open_header(data: bytes) -> Image.Image:
    """`Image.open` (the header only), with PIL's DecompressionBombWarning raised as an error.
    Warning filters are process-wide, so the few microseconds of reading a header are taken
    one thread at a time; decoding (`load`) runs in parallel."""
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data))


def _refuse_bomb(size: tuple[int, int], max_pixels: int) -> None:
    pixels = size[0] * size[1]
    if pixels > max_pixels:
        raise InvalidInputError(
            f"refused as a decompression bomb: the header claims {size[0]} x {size[1]} = "
            f"{pixels:,} pixels, over the limit of {max_pixels:,}"
        )


def _rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB copy, whatever the mode (16-bit and float images rescaled to 0..255)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else values * 0
        return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")


def _reduced(image: Image.Image, side: int) -> Image.Image:
    if max(image.size) <= side:
        return image
    copy = image.copy()
    copy.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return copy


def _halved(image: Image.Image) -> Image.Image:
    """A 2x box-reduced copy of an image over 256 px (global colour statistics need no more)."""
    return image.reduce(2) if min(image.size) > 256 else image


def _smaller(image: Image.Image, thumbnail: Image.Image) -> Image.Image:
    """`thumbnail` (a fixed-size copy) where it is smaller than the image, else the image."""
    return thumbnail if max(image.size) > max(thumbnail.size) else image


# --- measurements ----------------------------------------------------------------------------


def measure(
    record: ImageRecord,
    *,
    faces: bool = False,
    ocr: bool | None = None,
    max_pixels: int = MAX_PIXELS,
) -> dict[str, Any]:
    """The measurements of one image (see the module docstring). Raises InvalidInputError for
    an image that cannot be decoded or is refused; MissingBackendError for `ocr=True` without
    the tesseract binary (`ocr=None` reads text when tesseract is there, else says why not in
    `text_skipped`)."""
    row, _ = analyse(record, faces=faces, ocr=ocr, max_pixels=max_pixels, embedding=False)
    return row


def analyse(
    record: ImageRecord,
    *,
    faces: bool = False,
    ocr: bool | None = None,
    max_pixels: int = MAX_PIXELS,
    embedding: bool = True,
) -> tuple[dict[str, Any], np.ndarray | None]:
    """`measure` and `embed` from one decoding: (the measurements, the embedding or None)."""
    decoded, (width, height) = _decode(record.data, max_pixels, draft_side=FACE_SIDE)
    original_mode, image_format = decoded.mode, decoded.format
    rgb = _rgb(decoded)
    work = _reduced(rgb, WORK_SIDE)
    small = _thumbnail(work)
    # Float luma (not PIL's rounded "L"), so that the noise's median is not stuck on steps.
    luma = np.asarray(work, dtype=np.float32) @ _LUMA_WEIGHTS
    row: dict[str, Any] = {
        "width": width,
        "height": height,
        "aspect": width / height,
        "mode": original_mode,
        "channels": len(decoded.getbands()),
        "format": image_format,
        "bytes": len(record.data),
        "jpeg_quality": jpeg_quality(decoded),
        "brightness": float(luma.mean()),
        "contrast": float(luma.std()),
        "colourfulness": colourfulness(np.asarray(_halved(work), dtype=np.float32)),
        "sharpness": sharpness(luma),
        "noise": noise_sigma(luma),
        "dominant_colours": json.dumps(dominant_colours(_smaller(work, small))),
        "phash": perceptual_hash(small),
    }
    row.update(exif_fields(decoded))
    row.update(_faces(rgb, width) if faces else {"faces": None, "face_boxes": None})
    row.update(_text(rgb, ocr))
    vector = _descriptor(small) if embedding else None
    return row, vector


def colourfulness(pixels: np.ndarray) -> float:
    """Hasler and Süsstrunk's colourfulness of an RGB float array (0 for grey)."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    spread = np.hypot(rg.std(), yb.std())
    mean = np.hypot(rg.mean(), yb.mean())
    return float(spread + 0.3 * mean)


def sharpness(luma: np.ndarray) -> float:
    """The variance of the 4-neighbour Laplacian of the luma over the interior pixels (0 for a
    flat image; higher is sharper)."""
    if min(luma.shape) < 3:
        return 0.0
    response = luma[:-2, 1:-1] + luma[2:, 1:-1]
    response += luma[1:-1, :-2]
    response += luma[1:-1, 2:]
    response -= 4 * luma[1:-1, 1:-1]
    return float(response.var())


def noise_sigma(luma: np.ndarray) -> float:
    """A robust estimate of the noise's standard deviation (in luma levels): the median
    absolute response of Immerkær's noise mask [[1,-2,1],[-2,4,-2],[1,-2,1]] (a difference of
    Laplacians that cancels edges and smooth gradients; L2 norm 6), scaled to a Gaussian sigma,
    over at most ~32k sampled pixels. 0 for a flat image."""
    if min(luma.shape) < 3:
        return 0.0
    rows = luma[:-2] + luma[2:]
    rows -= 2 * luma[1:-1]
    response = rows[:, :-2] + rows[:, 2:]
    response -= 2 * rows[:, 1:-1]
    step = max(1, int(np.sqrt(response.size / 32_768)))
    sample = np.abs(response[::step, ::step])
    return float(np.median(sample) * 1.4826 / 6.0)


def dominant_colours(image: Image.Image, count: int = 3) -> list[dict[str, Any]]:
    """The `count` main colours of an RGB image (k-means on a 16-px thumbnail, started from
    luma quantiles so that it is deterministic), as [{"hex": "#rrggbb", "share": 0..1}],
    largest share first."""
    pixels = np.asarray(_reduced(image, 16), dtype=np.float32).reshape(-1, 3)
    order = np.argsort(pixels @ _LUMA_WEIGHTS)
    centres = pixels[order[((np.arange(count) + 0.5) * len(pixels) / count).astype(int)]]
    for _ in range(8):
        nearest = ((pixels[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        members = (nearest[:, None] == np.arange(count)).astype(np.float32)
        sizes = members.sum(axis=0)
        moved = np.where(sizes[:, None] > 0, members.T @ pixels / np.maximum(sizes, 1)[:, None],
                         centres)  # fmt: skip
        if np.abs(moved - centres).max() < 0.5:
            break
        centres = moved
    shares = np.bincount(nearest, minlength=count) / len(pixels)
    colours = sorted(zip(shares, centres.tolist(), strict=True), key=lambda c: -c[0])
    return [
        {"hex": "#{:02x}{:02x}{:02x}".format(*(round(v) for v in centre)),
         "share": round(float(share), 4)}
        for share, centre in colours
        if share > 0
    ]  # fmt: skip


@functools.cache
def _quality_tables() -> np.ndarray:
    """IJG's luma+chroma tables for qualities 1..100: shape (100, 128)."""
    base = np.concatenate([_LUMA_TABLE, _CHROMA_TABLE])
    tables = []
    for quality in range(1, 101):
        scale = 5000 / quality if quality < 50 else 200 - 2 * quality
        tables.append(np.clip(np.floor((base * scale + 50) / 100), 1, 255))
    return np.array(tables)


def jpeg_quality(image: Image.Image) -> int | None:
    """The IJG quality (1..100) whose quantization tables are nearest the JPEG's, or None for
    an image that is not a JPEG. Exact for files written by libjpeg (PIL, most tools)."""
    tables = getattr(image, "quantization", None)
    if image.format != "JPEG" or not tables:
        return None
    luma = np.asarray(tables[min(tables)], dtype=np.float64)[:64]
    reference = _quality_tables()
    if len(tables) > 1:
        chroma = np.asarray(tables[sorted(tables)[1]], dtype=np.float64)[:64]
        error = np.abs(np.log(reference) - np.log(np.concatenate([luma, chroma]))).sum(axis=1)
    else:
        error = np.abs(np.log(reference[:, :64]) - np.log(luma)).sum(axis=1)
    return int(np.argmin(error)) + 1


def exif_fields(image: Image.Image) -> dict[str, Any]:
    """`exif` (a few named fields, JSON, or None without EXIF) and `has_gps`."""
    try:
        exif = image.getexif()
    except Exception:  # a broken EXIF block is not a reason to drop the image
        return {"exif": None, "has_gps": False}
    fields = {name: _jsonable(exif[tag]) for tag, name in EXIF_FIELDS.items() if tag in exif}
    gps = {}
    if GPS_IFD in exif:
        try:
            gps = dict(exif.get_ifd(GPS_IFD))
        except Exception:
            gps = {}
    has_gps = bool(gps)
    if has_gps:
        fields["GPSTags"] = len(gps)
    return {"exif": json.dumps(fields, sort_keys=True) if fields else None, "has_gps": has_gps}


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\x00")
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def perceptual_hash(image: Image.Image) -> str:
    """The 64-bit DCT perceptual hash (imagehash.phash, on a 32x32 grey copy: the size it
    hashes at) as 16 hex digits."""
    import imagehash

    thumb = image.convert("L").resize((32, 32), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return str(imagehash.phash(thumb))


# --- faces and text --------------------------------------------------------------------------


_per_thread = threading.local()


def _face_detector() -> Any:
    """dlib's HOG face detector, one per thread (profiling measures in threads)."""
    detector = getattr(_per_thread, "face_detector", None)
    if detector is None:
        import dlib

        detector = _per_thread.face_detector = dlib.get_frontal_face_detector()
    return detector


def _faces(rgb: Image.Image, original_width: int) -> dict[str, Any]:
    """`faces` (count) and `face_boxes` (JSON [[x, y, w, h]] in original pixels) from dlib's
    HOG detector, run at up to FACE_SIDE pixels (upsampled once below 400)."""
    scan = _reduced(rgb, FACE_SIDE)
    scale = original_width / scan.size[0]  # a large JPEG may have been decoded reduced
    gray = np.asarray(scan.convert("L"))
    upsample = 1 if max(scan.size) < 400 else 0
    found = _face_detector()(gray, upsample)
    boxes = [
        [round(max(0, r.left()) * scale), round(max(0, r.top()) * scale),
         round(r.width() * scale), round(r.height() * scale)]
        for r in found
    ]  # fmt: skip
    return {"faces": len(boxes), "face_boxes": json.dumps(boxes)}


def tesseract_available() -> tuple[bool, str]:
    """(whether OCR can run, why not when it cannot): pytesseract importable and its
    `tesseract_cmd` binary on the PATH."""
    try:
        import pytesseract
    except ImportError:
        return False, "pytesseract is not installed"
    return _tesseract_status(pytesseract.pytesseract.tesseract_cmd)


@functools.cache
def _tesseract_status(command: str) -> tuple[bool, str]:
    if shutil.which(command) is None:
        return False, f"the tesseract binary ({command}) is not found"
    return True, ""


def _text(rgb: Image.Image, ocr: bool | None) -> dict[str, Any]:
    if ocr is False:
        return {"text": None, "text_skipped": "OCR turned off"}
    available, reason = tesseract_available()
    if not available:
        if ocr:
            raise MissingBackendError(f"OCR was asked for but {reason}; install tesseract-ocr")
        return {"text": None, "text_skipped": reason}
    import pytesseract

    text = pytesseract.image_to_string(ImageOps.grayscale(rgb)).strip()
    return {"text": text[:TEXT_LIMIT], "text_skipped": None}


# --- the descriptor --------------------------------------------------------------------------

_HSV_BINS = (8, 4, 4)
_HOG_CELL = 16  # 16-px cells on the 64x64 grey copy: 4 x 4 cells
_HOG_ORIENTATIONS = 8  # unsigned gradient orientations, 22.5 degrees each
_HOG_LENGTH = (EMBED_SIDE // _HOG_CELL) ** 2 * _HOG_ORIENTATIONS
_LBP_RADII = (1, 2)  # 8 neighbours on the square ring at each distance
_LBP_BINS = 10  # uniform patterns by their count of set bits (0..8), and the rest
EMBEDDING_DIM = int(np.prod(_HSV_BINS)) + _HOG_LENGTH + _LBP_BINS * len(_LBP_RADII)


def embed(image: Image.Image) -> np.ndarray:
    """A fixed-length (EMBEDDING_DIM) L2-normalised float32 descriptor of an image: an HSV
    colour histogram (8 x 4 x 4), a histogram of oriented gradients (4 x 4 cells x 8
    orientations) and two uniform local-binary-pattern histograms, all on a 64x64 copy; each
    block square-rooted, normalised and given equal weight. Needs no downloaded weights;
    near-identical images get near-identical vectors."""
    return _descriptor(_thumbnail(_reduced(_rgb(image), WORK_SIDE)))


def _thumbnail(work: Image.Image) -> Image.Image:
    """The EMBED_SIDE x EMBED_SIDE copy the descriptor, dominant colours and hash are made of."""
    return work.resize((EMBED_SIDE, EMBED_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)


def _descriptor(small: Image.Image) -> np.ndarray:
    hsv = np.asarray(small.convert("HSV"), dtype=np.int64).reshape(-1, 3)
    h, sat, v = (hsv * np.array(_HSV_BINS) // 256).T
    index = (h * _HSV_BINS[1] + sat) * _HSV_BINS[2] + v
    colour = np.bincount(index, minlength=int(np.prod(_HSV_BINS)))
    gray = np.asarray(small.convert("L"), dtype=np.int16)
    blocks = [colour, _gradient_histogram(gray), *(_lbp_histogram(gray, r) for r in _LBP_RADII)]
    vector = np.concatenate([_unit(np.sqrt(b.astype(np.float64))) for b in blocks])
    return _unit(vector).astype(np.float32)


def _gradient_histogram(gray: np.ndarray) -> np.ndarray:
    """HOG without block overlap: per cell, the gradient magnitude summed by orientation."""
    values = gray.astype(np.float32)
    gx = np.zeros_like(values)
    gy = np.zeros_like(values)
    gx[:, 1:-1] = values[:, 2:] - values[:, :-2]
    gy[1:-1, :] = values[2:, :] - values[:-2, :]
    magnitude = np.hypot(gx, gy)
    angle = np.arctan2(gy, gx) % np.pi
    orientation = np.minimum((angle * (_HOG_ORIENTATIONS / np.pi)).astype(np.int64),
                             _HOG_ORIENTATIONS - 1)  # fmt: skip
    rows, columns = np.indices(gray.shape) // _HOG_CELL
    cell = rows * (gray.shape[1] // _HOG_CELL) + columns
    return np.bincount((cell * _HOG_ORIENTATIONS + orientation).ravel(),
                       weights=magnitude.ravel(), minlength=_HOG_LENGTH)  # fmt: skip


def _uniform_lbp_table() -> np.ndarray:
    """The bin of each 8-bit pattern: its count of set bits when it has at most two 0/1
    transitions around the circle (a uniform pattern), else 9."""
    table = np.full(256, _LBP_BINS - 1, dtype=np.int64)
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        if sum(bits[i] != bits[(i + 1) % 8] for i in range(8)) <= 2:
            table[code] = sum(bits)
    return table


_LBP_TABLE = _uniform_lbp_table()


def _lbp_histogram(gray: np.ndarray, radius: int) -> np.ndarray:
    """Uniform LBP over the 8 neighbours at `radius` (square ring), as a 10-bin histogram."""
    r = radius
    height, width = gray.shape
    centre = gray[r : height - r, r : width - r]
    offsets = ((0, r), (-r, r), (-r, 0), (-r, -r), (0, -r), (r, -r), (r, 0), (r, r))
    codes = np.zeros(centre.shape, dtype=np.int64)
    for bit, (dy, dx) in enumerate(offsets):
        neighbour = gray[r + dy : height - r + dy, r + dx : width - r + dx]
        codes |= (neighbour >= centre).astype(np.int64) << bit
    return np.bincount(_LBP_TABLE[codes].ravel(), minlength=_LBP_BINS)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
