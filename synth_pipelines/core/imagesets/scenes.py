"""A procedural scene simulator: the weight-free default generator for non-face image sets.

A scene is a background (a two-colour gradient, multi-octave value noise, or stripes), a few
objects on it (ellipses, polygons, rounded boxes) each shaded towards one directional light and
casting a soft shadow away from it, a fine surface texture and a global light gradient over the
whole frame. After
`match_statistics` has brought brightness/contrast/colour to the profile's targets, `finish`
blurs or sharpens towards a target sharpness (variance of the 4-neighbour Laplacian of luma)
and adds sensor noise of a target sigma.

Everything derives from one seed: `SceneSimulator().render(w, h, seed)` gives the same bytes on
every run. Numpy and PIL only, no weights: about 90 scenes per CPU second at 256 px, and
about 50 per CPU second through the whole generation step (matching, finishing, JPEG), on a
shared 2-vCPU EPYC VM (benchmarks/imagesets_generate.py).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from synth_pipelines.core.errors import InvalidInputError

SIZE_RANGE = (8, 8192)
BACKGROUNDS = ("gradient", "value_noise", "stripes")
SHAPES = ("ellipse", "polygon", "rounded_box")
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as PIL's "L"
_NOISE_LAPLACIAN_GAIN = 20.0  # Laplacian variance of white noise of variance 1 (16 + 4 * 1)
_MAX_BLUR_RADIUS = 12.0
_MAX_UNSHARP_STRENGTH = 12.0  # x + p (x - blur(x)), p at most this
_UNSHARP_RADIUS = 1.5
_PROBE_SIDE = 128
_GRAIN_TILE = 512


def laplacian_variance(gray: np.ndarray) -> float:
    """The variance of the 4-neighbour Laplacian of a 2-D image (the profile's sharpness)."""
    g = np.asarray(gray, dtype=np.float32)
    return float(_laplacian(g).var()) if min(g.shape) >= 3 else 0.0


@dataclass(frozen=True)
class Light:
    """A directional light: unit direction (towards the light) in image coordinates."""

    dx: float
    dy: float
    strength: float  # how much darker the far side of the frame is, 0..1

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Light:
        angle = float(rng.uniform(0, 2 * math.pi))
        return cls(math.cos(angle), math.sin(angle), float(rng.uniform(0.1, 0.45)))


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """An RGB colour (0..1) from a random hue, saturation and value."""
    hue = float(rng.uniform(0, 1))
    sat = float(rng.uniform(0.1, 0.9))
    val = float(rng.uniform(0.25, 0.95))
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6) % 6
    return (val - val * sat * np.clip(np.minimum(k, 4 - k), 0, 1)).astype(np.float32)


def _coords(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres normalised to 0..1 along the longer side, as (1, w) and (h, 1) arrays."""
    scale = 1.0 / max(width, height)
    xs = (np.arange(width, dtype=np.float32) + 0.5) * scale
    ys = (np.arange(height, dtype=np.float32) + 0.5) * scale
    return xs[None, :], ys[:, None]


def _value_noise(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Multi-octave value noise in 0..1: random coarse grids, bicubically upsampled, summed."""
    total = np.zeros((height, width), np.float32)
    amplitude, weight = 1.0, 0.0
    cells = int(rng.integers(2, 6))
    for _ in range(int(rng.integers(2, 5))):
        grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
        layer = Image.fromarray(grid, "F").resize((width, height), Image.Resampling.BICUBIC)
        total += amplitude * np.asarray(layer)
        weight += amplitude
        amplitude *= float(rng.uniform(0.35, 0.6))
        cells *= 2
    return np.clip(total / weight, 0, 1)


def _background(
    rng: np.random.Generator, width: int, height: int
) -> tuple[np.ndarray, dict[str, Any]]:
    style = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    first, second = _random_colour(rng), _random_colour(rng)
    xs, ys = _coords(width, height)
    angle = float(rng.uniform(0, 2 * math.pi))
    along = xs * math.cos(angle) + ys * math.sin(angle)
    if style == "gradient":
        t = along - along.min()
        t = t / max(float(t.max()), 1e-6)
    elif style == "value_noise":
        t = _value_noise(rng, width, height)
    else:
        frequency = float(rng.uniform(3, 24))
        phase = float(rng.uniform(0, 2 * math.pi))
        wave = 0.5 + 0.5 * np.sin(2 * math.pi * frequency * along + phase)
        hardness = float(rng.uniform(1, 6))
        t = 0.5 + 0.5 * np.tanh(hardness * (wave - 0.5))  # a logistic step, softened
    canvas = np.empty((height, width, 3), np.float32)
    canvas[:] = np.broadcast_to(t, (height, width))[..., None]
    canvas *= second - first
    canvas += first
    return canvas, {"background": style}


def _shape_mask(
    rng: np.random.Generator, kind: str, size: tuple[int, int], margin: int
) -> Image.Image:
    """A white shape on black in a (w, h) box, `margin` pixels of black around it."""
    w, h = size
    mask = Image.new("L", (w + 2 * margin, h + 2 * margin), 0)
    draw = ImageDraw.Draw(mask)
    box = (margin, margin, margin + w - 1, margin + h - 1)
    if kind == "ellipse":
        draw.ellipse(box, fill=255)
    elif kind == "rounded_box":
        radius = int(min(w, h) * rng.uniform(0.05, 0.45))
        draw.rounded_rectangle(box, radius=radius, fill=255)
    else:
        sides = int(rng.integers(3, 9))
        start = float(rng.uniform(0, 2 * math.pi))
        angles = start + np.sort(rng.uniform(0, 2 * math.pi, sides))
        cx, cy = margin + w / 2, margin + h / 2
        radii = rng.uniform(0.6, 1.0, sides)
        points = [
            (cx + r * w / 2 * math.cos(a), cy + r * h / 2 * math.sin(a))
            for a, r in zip(angles, radii, strict=True)
        ]
        draw.polygon(points, fill=255)
    return mask


def _soft_shadow(mask: Image.Image, softness: float) -> np.ndarray:
    """`mask` Gaussian-blurred by `softness` px, as float 0..1; wide blurs run at a quarter of
    the resolution (a soft shadow has no detail to lose)."""
    if softness < 3 or min(mask.size) < 16:
        blurred = mask.filter(ImageFilter.GaussianBlur(softness))
    else:
        small = mask.reduce(4).filter(ImageFilter.GaussianBlur(softness / 4))
        blurred = small.resize(mask.size, Image.Resampling.BILINEAR)
    return np.asarray(blurred, np.float32) / 255


def _place_object(
    rng: np.random.Generator, canvas: np.ndarray, light: Light, scale: int
) -> dict[str, Any]:
    """Draw one shaded object with its soft shadow onto `canvas` (in place)."""
    height, width = canvas.shape[:2]
    kind = SHAPES[int(rng.integers(len(SHAPES)))]
    w = max(3, int(scale * rng.uniform(0.12, 0.5)))
    h = max(3, int(w * rng.uniform(0.5, 1.6)))
    left = int(rng.integers(-w // 4, max(1, width - 3 * w // 4)))
    top = int(rng.integers(-h // 4, max(1, height - 3 * h // 4)))
    colour = _random_colour(rng)
    offset = max(1.0, scale * float(rng.uniform(0.01, 0.05)))
    softness = max(0.8, offset * float(rng.uniform(0.6, 1.5)))
    margin = int(offset + 3 * softness) + 2
    mask = _shape_mask(rng, kind, (w, h), margin)
    edge = np.asarray(mask.filter(ImageFilter.GaussianBlur(0.6)), np.float32) / 255
    shadow = _soft_shadow(mask, softness)
    # The shadow falls away from the light: shift it by -direction * offset.
    sx, sy = round(-light.dx * offset), round(-light.dy * offset)
    shadow = np.roll(shadow, (sy, sx), axis=(0, 1))
    x0, y0 = left - margin, top - margin
    x1, y1 = x0 + mask.width, y0 + mask.height
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if cx0 >= cx1 or cy0 >= cy1:
        return {"shape": kind, "visible": False}
    crop = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
    region = canvas[cy0:cy1, cx0:cx1]
    darkness = float(rng.uniform(0.25, 0.6))
    region *= (1 - darkness * shadow[crop])[..., None]
    # Shading: brighter towards the light, a Lambert-like falloff across the object.
    u = (np.arange(cx0 - x0, cx1 - x0, dtype=np.float32) - margin - w / 2) * (light.dx * 2 / w)
    v = (np.arange(cy0 - y0, cy1 - y0, dtype=np.float32) - margin - h / 2) * (light.dy * 2 / h)
    shade = np.clip(0.78 + 0.32 * (u[None, :] + v[:, None]), 0.35, 1.15)
    alpha = edge[crop][..., None]
    region += alpha * (shade[..., None] * colour - region)
    return {"shape": kind, "visible": True, "box": [left, top, w, h]}


def _surface_texture(rng: np.random.Generator, canvas: np.ndarray) -> float:
    """Fine multiplicative texture (value noise with cells of 2-4 px) over the frame (in place),
    the small-scale detail real surfaces have: without it a scene is smoother than any photo
    and reaching a photo's sharpness would take extreme sharpening. Returns its amplitude."""
    height, width = canvas.shape[:2]
    cell = float(rng.uniform(2, 4))
    amplitude = float(rng.uniform(0.03, 0.12))
    grid = rng.random((max(2, int(height / cell)), max(2, int(width / cell))), dtype=np.float32)
    fine = Image.fromarray(grid, "F").resize((width, height), Image.Resampling.BICUBIC)
    canvas *= (1 + amplitude * (np.asarray(fine) - 0.5))[..., None]
    return round(amplitude, 3)


def _light_gradient(canvas: np.ndarray, light: Light) -> None:
    """Darken the frame away from the light (in place)."""
    height, width = canvas.shape[:2]
    xs, ys = _coords(width, height)
    along = (xs - xs.mean()) * light.dx + (ys - ys.mean()) * light.dy
    span = max(float(np.abs(along).max()), 1e-6)
    canvas *= (1 - light.strength * (0.5 - 0.5 * along / span))[..., None]


class SceneSimulator:
    """Renders deterministic procedural scenes of any size; no weights, numpy + PIL."""

    name = "scene-simulator-v1"

    def __init__(self, max_objects: int = 6) -> None:
        if not 0 <= max_objects <= 64:
            raise InvalidInputError(f"max_objects must be from 0 to 64, got {max_objects}")
        self.max_objects = max_objects

    def render(self, width: int, height: int, seed: int) -> tuple[Image.Image, dict[str, Any]]:
        """An RGB scene of `width` x `height` and what was drawn (background style, light,
        objects with their [x, y, w, h] boxes). The same arguments give the same image."""
        for name, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not SIZE_RANGE[0] <= int(value) <= SIZE_RANGE[1]:
                raise InvalidInputError(
                    f"scene {name} must be from {SIZE_RANGE[0]} to {SIZE_RANGE[1]} px, "
                    f"got {value!r}"
                )
        if isinstance(seed, bool) or int(seed) < 0:
            raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
        rng = np.random.default_rng(int(seed))
        canvas, info = _background(rng, int(width), int(height))
        light = Light.sample(rng)
        scale = max(width, height)
        count = int(rng.integers(min(1, self.max_objects), self.max_objects + 1))
        objects = [_place_object(rng, canvas, light, scale) for _ in range(count)]
        _light_gradient(canvas, light)
        grain = _surface_texture(rng, canvas)
        pixels = np.clip(canvas * 255 + 0.5, 0, 255).astype(np.uint8)
        info |= {
            "texture": grain,
            "light": [round(light.dx, 3), round(light.dy, 3)],
            "objects": [o for o in objects if o["visible"]],
        }
        return Image.fromarray(pixels, "RGB"), info


def _probe(image: Image.Image) -> Image.Image:
    """The luma of the central region (at most _PROBE_SIDE square) on which the blur or
    sharpening strength is searched: a quarter of the work at 256 px, the same statistics."""
    width, height = image.size
    side_w, side_h = min(width, _PROBE_SIDE), min(height, _PROBE_SIDE)
    left, top = (width - side_w) // 2, (height - side_h) // 2
    return image.crop((left, top, left + side_w, top + side_h)).convert("L")


def _normalised_sharpness(before: np.ndarray, after: np.ndarray) -> float:
    """The Laplacian variance of `after` once its std is brought back to that of `before`
    (as `finish` does): blurring lowers contrast and sharpening raises it."""
    gain = float(before.std()) / max(float(after.std()), 1e-3)
    return laplacian_variance(after) * gain**2


def _blur_radius(probe: Image.Image, target: float) -> tuple[float, float]:
    """The Gaussian radius (bisection on the luma probe) whose result's Laplacian variance, at
    the original contrast, is closest to `target` (below the probe's own), and the contrast
    gain that restores the std the blur takes."""
    original = np.asarray(probe, np.float32)
    low, high = 0.0, _MAX_BLUR_RADIUS
    for _ in range(6):
        radius = (low + high) / 2
        blurred = np.asarray(probe.filter(ImageFilter.GaussianBlur(radius)), np.float32)
        measured = _normalised_sharpness(original, blurred)
        low, high = (radius, high) if measured > target else (low, radius)
    blurred = np.asarray(probe.filter(ImageFilter.GaussianBlur(high)), np.float32)
    return high, float(original.std()) / max(float(blurred.std()), 1e-3)


def _unsharp_strength(probe: Image.Image, target: float) -> tuple[float, float]:
    """The unsharp-mask strength p that brings the luma probe's Laplacian variance, at the
    original contrast, up to about `target`, and the contrast gain that undoes its rise in std.

    Unsharp masking is x + p d with d = x - blur(x): its Laplacian, A + p B, and the image,
    x + p d, are linear in p, so both variances are quadratics in p whose coefficients one
    blur gives; p is read off a fine grid, no search needed.
    """
    x = np.asarray(probe, np.float32)
    detail = x - np.asarray(probe.filter(ImageFilter.GaussianBlur(_UNSHARP_RADIUS)), np.float32)
    p = np.linspace(0.0, _MAX_UNSHARP_STRENGTH, 241)
    lap_var = _quadratic_variance(_laplacian(x), _laplacian(detail), p)
    image_var = _quadratic_variance(x, detail, p)
    normalised = lap_var * float(x.var()) / np.maximum(image_var, 1e-6)
    below = np.nonzero(normalised <= target)[0]
    index = int(below[-1]) if len(below) else 0
    return float(p[index]), math.sqrt(float(x.var()) / max(float(image_var[index]), 1e-6))


def _laplacian(g: np.ndarray) -> np.ndarray:
    return 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]


def _quadratic_variance(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> np.ndarray:
    """var(a + p b) for each p, from var(a), cov(a, b) and var(b)."""
    a0, b0 = a - a.mean(), b - b.mean()
    return (
        float((a0 * a0).mean()) + 2 * p * float((a0 * b0).mean()) + p**2 * float((b0 * b0).mean())
    )


def finish(
    image: Image.Image, sharpness: float | None, noise: float | None, seed: int
) -> tuple[Image.Image, dict[str, float]]:
    """Blur or sharpen `image` towards Laplacian variance `sharpness`, then add Gaussian sensor
    noise of sigma `noise` (pixel levels); None skips either. Deterministic in `seed`.

    Noise adds 20 sigma^2 to the Laplacian variance, so the blur or sharpening aims at what is
    left. Both keep the luma std (the contrast matched before): the strength is found on a
    central luma probe, then sharpening (of luma, as cameras do), the contrast correction and
    the noise are applied in one pass over the pixels.
    """
    applied: dict[str, float] = {}
    sigma = max(0.0, float(noise or 0.0))
    strength, gain = 0.0, 1.0
    if sharpness is not None and sharpness > 0:
        aim = max(1.0, float(sharpness) - _NOISE_LAPLACIAN_GAIN * sigma**2)
        probe = _probe(image)
        current = laplacian_variance(np.asarray(probe))
        if current > aim * 1.1:
            radius, gain = _blur_radius(probe, aim)
            image = image.filter(ImageFilter.GaussianBlur(radius))
            applied["blur_radius"] = round(radius, 3)
        elif current < aim / 1.1:
            strength, gain = _unsharp_strength(probe, aim)
            applied["unsharp_strength"] = round(strength, 3)
    if strength == 0 and abs(gain - 1) < 1e-3 and sigma <= 0.05:
        return image, applied
    rgb = np.array(image, np.float32)
    if strength > 0:
        gray = image.convert("L")
        detail = np.asarray(gray, np.float32)
        detail -= np.asarray(gray.filter(ImageFilter.GaussianBlur(_UNSHARP_RADIUS)), np.float32)
        rgb += (strength * detail)[..., None]
    if abs(gain - 1) >= 1e-3:
        mean = float((rgb @ _LUMA).mean())
        rgb -= mean
        rgb *= gain
        rgb += mean
    if sigma > 0.05:
        rgb += (sigma * _grain(image.size, seed))[..., None]
        applied["noise_sigma"] = round(sigma, 3)
    np.clip(rgb + 0.5, 0, 255, out=rgb)
    return Image.fromarray(rgb.astype(np.uint8), "RGB"), applied


@functools.cache
def _grain_tile() -> np.ndarray:
    """A fixed tile of standard normal noise that every image's grain is cut from."""
    return np.random.default_rng(0x6A1).standard_normal((_GRAIN_TILE, _GRAIN_TILE), np.float32)


def _grain(size: tuple[int, int], seed: int) -> np.ndarray:
    """Unit Gaussian noise of `size` (w, h): a seed-chosen window of a fixed noise tile,
    transposed and flipped by the seed, so no image draws its own; freshly drawn for images
    larger than the tile. The same on the three channels: luma noise, as the profile measures
    it."""
    width, height = size
    rng = np.random.default_rng([int(seed), 0x401CE])
    if max(width, height) > _GRAIN_TILE:
        return rng.standard_normal((height, width), dtype=np.float32)
    tile = _grain_tile()
    if rng.integers(2):
        tile = tile.T
    left = int(rng.integers(0, _GRAIN_TILE - width + 1))
    top = int(rng.integers(0, _GRAIN_TILE - height + 1))
    window = tile[top : top + height, left : left + width]
    return window[::-1] if rng.integers(2) else window
