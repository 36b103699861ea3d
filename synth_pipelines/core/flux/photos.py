"""A subject's photos, prepared for Flux LoRA training: one face each, cropped, bucketed, captioned.

`read_upload` turns uploaded files (and .zip archives) into (name, bytes); `prepare_photos`
decodes each (EXIF orientation applied), finds exactly one face with dlib's HOG detector, crops
around it with a margin, scales the crop into an aspect bucket (`photos_buckets`), drops exact
and near-duplicates (perceptual hash), and captions it with the trigger word (`photos_captions`).
Every photo it does not use is returned with the reason; fewer than 4 usable photos raise
`NotEnoughPhotosError`, listing them all. Bytes in, bytes out: storage is the caller's.
"""

from __future__ import annotations

import functools
import hashlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import imagehash
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.flux.photos_buckets import (
    BUCKET_SIDES,
    Box,
    check_max_side,
    choose_bucket,
    face_crop_box,
)
from synth_pipelines.core.flux.photos_captions import (
    apply_trigger,
    caption_photo,
    check_trigger,
    load_captioner,
)
from synth_pipelines.core.flux.photos_upload import (
    MAX_PHOTOS,
    MIN_PHOTOS,
    read_upload,
    unique_names,
)

__all__ = [
    "BUCKET_SIDES",
    "MAX_PHOTOS",
    "MIN_PHOTOS",
    "NotEnoughPhotosError",
    "PhotoSet",
    "PreparedPhoto",
    "RejectedPhoto",
    "detect_faces",
    "load_captioner",
    "prepare_photos",
    "read_upload",
]

MIN_SHORT_SIDE = 256  # px: smaller photos hold too little of a face to learn from
MAX_PIXELS = 100_000_000  # larger is a decompression bomb or a scan, not a portrait
MIN_FACE_SIDE = 64  # px in the photo: a smaller face would be upscaled 8x into its bucket
DETECT_MAX_SIDE = 800  # detection runs on a copy this size: ~0.3 s at upsample 1
_FIRST_PASS_MIN_FACE = 40  # px: dlib's 80 px window, the image upsampled once
# dlib scores a face 0.5-2.5; clutter sometimes 0.1-0.2 (the astronaut photo's flag at
# upsample 1): a second detection counts as a second face only from this score up.
SECOND_FACE_SCORE = 0.3


@dataclass(frozen=True)
class PreparedPhoto:
    """One training photo. `image_png` is `bucket`-sized (width, height == bucket); `face_box`
    is (left, top, right, bottom) of the face in its pixels; `sha256` and `phash` are of
    `image_png` (its content address, and the 64-bit perceptual hash in hex); `source_sha256`
    is of the uploaded bytes. `notes` says what was done that a reviewer may want to know."""

    name: str
    image_png: bytes
    width: int
    height: int
    bucket: tuple[int, int]
    caption: str
    face_box: tuple[int, int, int, int]
    sha256: str
    phash: str
    source_sha256: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RejectedPhoto:
    """An uploaded file that is not used, and why (a user-facing reason)."""

    name: str
    reason: str


@dataclass
class PhotoSet:
    """The photos to train on, in upload order, and those rejected."""

    accepted: list[PreparedPhoto] = field(default_factory=list)
    rejected: list[RejectedPhoto] = field(default_factory=list)


class NotEnoughPhotosError(InvalidInputError):
    """Fewer than `MIN_PHOTOS` usable photos; the message lists every rejected one and why.
    `photos` holds the full `PhotoSet`."""

    def __init__(self, photos: PhotoSet) -> None:
        self.photos = photos
        count = len(photos.accepted)
        message = f"{count} usable photo{'' if count == 1 else 's'}, at least {MIN_PHOTOS} needed"
        if photos.rejected:
            message += "; rejected: " + "; ".join(f"{r.name}: {r.reason}" for r in photos.rejected)
        else:
            message += f": upload {MIN_PHOTOS - count} more photo(s) of the subject"
        super().__init__(message)

    @property
    def accepted(self) -> list[PreparedPhoto]:
        return self.photos.accepted

    @property
    def rejected(self) -> list[RejectedPhoto]:
        return self.photos.rejected

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (Dagster, worker processes) intact
        return (type(self), (self.photos,))


class _Rejected(Exception):
    """Internal: this photo is not used, for `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _decode(data: bytes) -> Image.Image:
    """Bytes -> upright RGB image (EXIF orientation applied, transparency on white)."""
    limit = f"at most {MAX_PIXELS // 10**6} megapixels"
    with warnings.catch_warnings():
        # Pillow warns from 89 MP on and refuses to open from 179 MP; MAX_PIXELS applies here.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            refused = 2 * (Image.MAX_IMAGE_PIXELS or 0) // 10**6
            raise _Rejected(f"too large: over {refused} megapixels, {limit}") from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise _Rejected("not an image (cannot decode)") from exc
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise _Rejected(f"too large: {width}x{height}, {limit}")
        try:
            image.load()
            image = ImageOps.exif_transpose(image)
        except Exception as exc:  # PIL's plugins raise many types on malformed data
            detail = " ".join(str(exc).split())[:80] or type(exc).__name__
            raise _Rejected(f"corrupt or truncated image ({detail})") from exc
    if image.mode.startswith("I;16"):
        # 16-bit grey: convert("RGB") would clip every level above 255 to white.
        image = image.convert("I").point(lambda v: v / 256).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image.convert("RGB")


@functools.cache
def _default_detector() -> Any:
    import dlib  # the dlib-bin wheel, only when photos are prepared

    return dlib.get_frontal_face_detector()


def detect_faces(rgb: np.ndarray, detector: Any = None) -> list[Box]:
    """Faces in an (h, w, 3) uint8 RGB image: (left, top, right, bottom) boxes in its pixels,
    clipped to it, best-scoring first.

    dlib's frontal HOG detector (or `detector`, anything with dlib's `run(image, upsample,
    threshold)`) runs on a copy at most 800 px long, upsampled once (faces from ~40 px of
    it), and twice when that finds none in a photo large enough for a smaller face of the copy
    to measure `MIN_FACE_SIDE` in the photo (from ~20 px). Besides the best detection, only
    those scoring at least `SECOND_FACE_SCORE` count.
    """
    detector = detector if detector is not None else _default_detector()
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
    small = rgb
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
    small = np.ascontiguousarray(small)
    found: list[tuple[float, Any]] = []
    for upsample in (1, 2):
        rects, scores, _ = detector.run(small, upsample, 0.0)
        found = sorted(zip(scores, rects, strict=True), key=lambda sr: -sr[0])
        # The second pass (~4x slower) only finds faces under ~40 px of the copy: worth it
        # only where such a face still measures MIN_FACE_SIDE in the photo (from ~1,300 px).
        if found or MIN_FACE_SIDE * scale >= _FIRST_PASS_MIN_FACE:
            break
    faces = [rect for k, (score, rect) in enumerate(found) if k == 0 or score >= SECOND_FACE_SCORE]
    return [
        (
            max(0, round(r.left() / scale)),
            max(0, round(r.top() / scale)),
            min(width, round((r.right() + 1) / scale)),
            min(height, round((r.bottom() + 1) / scale)),
        )
        for r in faces
    ]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _prepare_one(
    data: bytes, max_side: int, margin: float, detector: Any
) -> tuple[Image.Image, Box, tuple[str, ...]]:
    """One upload -> (bucket-sized image, face box in it, notes), or _Rejected."""
    image = _decode(data)
    width, height = image.size
    if min(width, height) < MIN_SHORT_SIDE:
        raise _Rejected(
            f"too small: {width}x{height}, at least {MIN_SHORT_SIDE} px on the short side"
        )
    faces = detect_faces(np.asarray(image), detector)
    if not faces:
        raise _Rejected("no face found (the detector needs a frontal face, not in profile)")
    if len(faces) > 1:
        raise _Rejected(f"{len(faces)} faces found: use photos of the subject alone")
    face = faces[0]
    face_side = min(face[2] - face[0], face[3] - face[1])
    if face_side < MIN_FACE_SIDE:
        raise _Rejected(
            f"face too small: {face_side} px, at least {MIN_FACE_SIDE} px: use a closer photo"
        )
    crop = choose_bucket(face_crop_box(face, image.size, margin), face, max_side)
    bucket_w, bucket_h = crop.bucket
    out = image.resize(crop.bucket, Image.Resampling.LANCZOS, box=crop.region)
    x0, y0, x1, y1 = crop.region
    sx, sy = bucket_w / (x1 - x0), bucket_h / (y1 - y0)
    box = (
        max(0, round((face[0] - x0) * sx)),
        max(0, round((face[1] - y0) * sy)),
        min(bucket_w, round((face[2] - x0) * sx)),
        min(bucket_h, round((face[3] - y0) * sy)),
    )
    notes: tuple[str, ...] = ()
    if crop.upscaled:
        notes = (f"upscaled from {round(x1 - x0)}x{round(y1 - y0)} px to {bucket_w}x{bucket_h}",)
    return out, box, notes


def prepare_photos(
    files: list[tuple[str, bytes]],
    trigger: str,
    caption_template: str = "a photo of {trigger}",
    captioner: Callable[[Image.Image], str] | None = None,
    max_side: int = 1024,
    margin: float = 0.6,
    phash_distance: int = 6,
    detector: Any = None,
) -> PhotoSet:
    """Uploaded (name, bytes) -> the prepared training photos and the rejected ones, in order.

    Each photo: decoded upright; exactly one face (`detect_faces`); the face box grown by
    `margin` x its size on each side; the largest region of the nearest bucket aspect in that
    crop, centred on the face, scaled (LANCZOS) to the bucket (long side 512/768/1024, at most
    `max_side`); a PNG. A photo whose bytes repeat an earlier one, or whose prepared image lies
    within `phash_distance` bits (perceptual hash) of an earlier accepted one, is a duplicate.
    Captions: `caption_template` with the trigger ("[trigger]" / "{trigger}" replaced, else
    "<trigger>, " in front), or, with a `captioner`, "<trigger> <its caption>". `detector`:
    a dlib-style face detector (see `detect_faces`), by default dlib's frontal HOG detector.

    InvalidInputError for a bad trigger, template or option, or more than 50 files;
    NotEnoughPhotosError (listing each rejected photo and why) when fewer than 4 are usable.
    """
    check_trigger(trigger)
    apply_trigger(caption_template, trigger)  # a bad template fails before any work
    check_max_side(max_side)
    if not 0.0 <= margin <= 4.0:
        raise InvalidInputError(f"margin must be from 0 to 4 (x the face size), got {margin!r}")
    if isinstance(phash_distance, bool) or not 0 <= phash_distance <= 32:
        raise InvalidInputError(f"phash_distance must be 0-32 bits, got {phash_distance!r}")
    if len(files) > MAX_PHOTOS:
        raise InvalidInputError(
            f"{len(files)} photos, at most {MAX_PHOTOS}: keep the best {MIN_PHOTOS}-{MAX_PHOTOS}"
        )
    result = PhotoSet()
    first_by_sha: dict[str, str] = {}
    hashes: list[tuple[imagehash.ImageHash, str]] = []
    for name, (_, data) in zip(unique_names([n for n, _ in files]), files, strict=True):
        source_sha = hashlib.sha256(data).hexdigest()
        try:
            if source_sha in first_by_sha:
                raise _Rejected(f"duplicate of {first_by_sha[source_sha]} (identical file)")
            first_by_sha[source_sha] = name
            image, box, notes = _prepare_one(data, max_side, margin, detector)
            phash = imagehash.phash(image)
            for earlier, earlier_name in hashes:
                if phash - earlier <= phash_distance:
                    raise _Rejected(f"near-duplicate of {earlier_name}")
        except _Rejected as rejected:
            result.rejected.append(RejectedPhoto(name, rejected.reason))
            continue
        hashes.append((phash, name))
        png = _png(image)
        result.accepted.append(
            PreparedPhoto(
                name=name,
                image_png=png,
                width=image.width,
                height=image.height,
                bucket=(image.width, image.height),
                caption=caption_photo(image, trigger, caption_template, captioner),
                face_box=box,
                sha256=hashlib.sha256(png).hexdigest(),
                phash=str(phash),
                source_sha256=source_sha,
                notes=notes,
            )
        )
    if len(result.accepted) < MIN_PHOTOS:
        raise NotEnoughPhotosError(result)
    return result
