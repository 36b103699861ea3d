"""Aspect buckets for Flux LoRA training photos, and the crop around a face that fills one.

A bucket is a (width, height) whose long side is one of `BUCKET_SIDES` and whose aspect is one of
`ASPECTS`; both sides are multiples of 16, as Flux's VAE (8x) and 2x2 patches need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from synth_pipelines.core.errors import InvalidInputError

BUCKET_SIDES = (512, 768, 1024)
ASPECTS = ((1, 1), (3, 4), (4, 3), (2, 3), (3, 2))  # (width, height) ratios
_MULTIPLE = 16

Box = tuple[int, int, int, int]  # (left, top, right, bottom), right and bottom exclusive


def _round_to_multiple(value: float) -> int:
    return max(_MULTIPLE, round(value / _MULTIPLE) * _MULTIPLE)


def bucket_size(side: int, aspect: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the bucket with long side `side` and `aspect` = (w, h) ratio."""
    w, h = aspect
    if w >= h:
        return side, _round_to_multiple(side * h / w)
    return _round_to_multiple(side * w / h), side


BUCKETS = tuple(bucket_size(side, aspect) for side in BUCKET_SIDES for aspect in ASPECTS)


@dataclass(frozen=True)
class BucketCrop:
    """Where a photo's bucket comes from: `region` of the source image, scaled to `bucket`."""

    bucket: tuple[int, int]
    region: tuple[float, float, float, float]  # (left, top, right, bottom) in source pixels
    upscaled: bool  # the region's long side is shorter than the bucket's


def check_max_side(max_side: int) -> int:
    """`max_side` unchanged, or InvalidInputError when no bucket side fits under it."""
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < BUCKET_SIDES[0]:
        raise InvalidInputError(
            f"max_side must be an integer >= {BUCKET_SIDES[0]} (bucket sides are "
            f"{', '.join(map(str, BUCKET_SIDES))}), got {max_side!r}"
        )
    return max_side


def face_crop_box(face: Box, image_size: tuple[int, int], margin: float) -> Box:
    """The face box grown by `margin` x its width (height) on each side, moved inside the
    image where it would cross an edge (keeping its size), then clamped to the image."""
    width, height = image_size
    left, top, right, bottom = face
    grow_x, grow_y = margin * (right - left), margin * (bottom - top)
    x0, x1 = _inside(left - grow_x, right + grow_x, width)
    y0, y1 = _inside(top - grow_y, bottom + grow_y, height)
    return x0, y0, x1, y1


def _inside(low: float, high: float, limit: int) -> tuple[int, int]:
    # Shift first so the face keeps its margin on the far side; clamp only what cannot fit.
    if low < 0:
        low, high = 0, high - low
    if high > limit:
        low, high = low - (high - limit), limit
    return max(0, round(low)), min(limit, round(high))


def choose_bucket(crop: Box, face: Box, max_side: int = 1024) -> BucketCrop:
    """The bucket for `crop` (source pixels): the aspect closest to the crop's, then the largest
    side in `BUCKET_SIDES` (at most `max_side`) that the region of that aspect inside the crop
    reaches without upscaling; 512 (upscaled) when it reaches none. The region is the largest
    of the bucket's exact aspect inside the crop, centred on the face as far as the crop allows.
    """
    left, top, right, bottom = crop
    crop_w, crop_h = right - left, bottom - top
    ratio = math.log(crop_w / crop_h)
    aspect = min(ASPECTS, key=lambda a: abs(math.log(a[0] / a[1]) - ratio))
    # Sides rounded to 16 bend the ratio a little (2:3 is 336x512, 512x768, 688x1024): size
    # the region by the nominal ratio to pick the side, then by that bucket's exact one.
    region_w, region_h = _fit(crop_w, crop_h, aspect)
    long_side = max(region_w, region_h)
    sides = [s for s in BUCKET_SIDES if s <= min(long_side, max_side)]
    side = sides[-1] if sides else BUCKET_SIDES[0]
    bucket = bucket_size(side, aspect)
    region_w, region_h = _fit(crop_w, crop_h, bucket)
    face_cx, face_cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    x0 = min(max(face_cx - region_w / 2, left), right - region_w)
    y0 = min(max(face_cy - region_h / 2, top), bottom - region_h)
    return BucketCrop(
        bucket, (x0, y0, x0 + region_w, y0 + region_h), upscaled=max(region_w, region_h) < side
    )


def _fit(crop_w: int, crop_h: int, bucket: tuple[int, int]) -> tuple[float, float]:
    """The largest (w, h) with the bucket's ratio inside crop_w x crop_h."""
    scale = min(crop_w / bucket[0], crop_h / bucket[1])
    return bucket[0] * scale, bucket[1] * scale
