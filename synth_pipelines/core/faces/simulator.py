"""The default face generator: a procedural face simulator that needs no model weights.

Each face is a `Look` sampled from bucket-dependent distributions (proportions, skin, hair, age
lines, ...), drawn with PIL at twice the output size, box-downsampled, then lit with a shading map
of the head as an ellipsoid. Everything derives from one per-face seed, so a stored face can be
re-rendered from `GeneratedFace.seed` alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.faces.buckets import AGE_GROUPS, GENDERS, Bucket
from synth_pipelines.core.faces.generation import GeneratedFace
from synth_pipelines.core.faces.simulator_hair import draw_back_hair, draw_front_hair
from synth_pipelines.core.faces.simulator_looks import (
    BACKGROUNDS,
    Color,
    Look,
    hex_color,
    jitter,
    pick,
    sample_look,
)
from synth_pipelines.core.faces.simulator_parts import (
    Pen,
    draw_beard,
    draw_body,
    draw_brows,
    draw_eyes,
    draw_glasses,
    draw_head,
    draw_moustache,
    draw_mouth,
    draw_nose,
    draw_wrinkles,
    head_outline,
)

SIZE_RANGE = (64, 1024)
COUNT_RANGE = (1, 10_000)
_SUPERSAMPLE = 2
_UNIT = 50.0  # design pixels (of 256) per face unit: half the face width


def _backdrop(rng: np.random.Generator) -> tuple[Color, str, float, dict[str, str]]:
    """Background colour, gradient style and depth (how much darker its far end is).

    The gradient is not drawn: `_light_map` applies it as a brightness ramp around the head,
    which costs nothing extra and also falls off over shoulders and hair as real light does.
    """
    base = jitter(rng, BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))], 0.08)
    style = pick(rng, {"solid": 2, "vertical": 2, "diagonal": 1.5, "vignette": 1.5})
    depth = 0.0 if style == "solid" else float(rng.uniform(0.15, 0.4))
    return base, style, depth, {"background": hex_color(base), "background_style": style}


# A child's light (`_child_light`), found with benchmarks/face_age_probe.py: the part of the
# side fall-off of the shading taken away, the lit band over the cheeks (pixel levels added),
# the shade over the brows and, for boys, the nose's shadow on the upper lip (levels taken from
# a mid-grey skin). All at full strength for `Look.child` >= 1 / CHILD_LIGHT_GAIN (ages 4 to
# 8), less for older children (12: 0.6), a little for young teens (13: 0.5, 16: 0.1); without
# the gain the 11- and 12-year-olds read 18-19 and the child median rose to 13-17.
CHILD_LIGHT_GAIN = 1.3
CHILD_FLATTEN = 0.8
CHILD_BAND = 30.0
CHILD_BROW = 75.0
BOY_LIP = 30.0
BAND_DY, BROW_DY = 0.1, 0.06  # the band's centre below the nose, the shade's above the brows
_LIGHT_GRID = 32  # the lighting is smooth: compute it coarse, let PIL interpolate it up
_GRAIN_BIAS = 16  # grain is stored as unsigned bytes around this value


def _light_map(
    look: Look,
    inverse: np.ndarray,
    yaw: float,
    light_x: float,
    backdrop: tuple[str, float],
    size: int,
) -> tuple[Image.Image, Image.Image]:
    """Two 8-bit maps at `size` that light the drawn image, treating the head as an ellipsoid.

    The first is a brightness factor (0..255 for 0..1): Lambert shading on the head, the
    background gradient around it, a gentle ramp towards the light. It only darkens; the
    second, an additive specular sheen in pixel levels, brightens.
    """
    coords = (np.arange(_LIGHT_GRID) + 0.5) * (size / _LIGHT_GRID)
    px, py = coords[None, :], coords[:, None]
    u = (inverse[0, 0] * px + inverse[0, 1] * py + inverse[0, 2]) / math.cos(yaw)
    v = inverse[1, 0] * px + inverse[1, 1] * py + inverse[1, 2]
    mid = (look.skull_top + look.chin_y) / 2
    nx, ny = u / (look.cheek_w * 1.03), (v - mid) / ((look.chin_y - look.skull_top) / 2)
    r2 = nx * nx + ny * ny
    nz = np.sqrt(np.clip(1 - r2, 0, 1))
    light = np.array([light_x, -0.35, 0.85])
    light /= np.linalg.norm(light)
    half = light + np.array([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    lambert = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0, 1)
    # A child's face is lit flatter: less fall-off towards the sides.
    youth = min(1.0, CHILD_LIGHT_GAIN * look.child)
    lambert = lambert + (1 - lambert) * CHILD_FLATTEN * youth * np.clip(1 - r2, 0, 1)
    weight = np.clip((1.06 - np.sqrt(r2)) / 0.14, 0, 1)
    ramp = 0.93 + 0.07 * light_x * (px / size - 0.5) * 2
    style, depth = backdrop
    far = _gradient_position(style, px / size, py / size)
    shade = ((0.68 + 0.34 * lambert) * weight + (1 - weight) * (1 - depth * far)) * ramp
    # Darker skin shows its highlights more; without them its features vanish in shadow.
    gloss = 30 + 40 * (1 - sum(look.skin) / 765)
    sheen = np.clip(nx * half[0] + ny * half[1] + nz * half[2], 0, 1) ** 12 * weight * gloss
    if look.child > 0:
        sheen, shade = _child_light(look, u, v, weight * youth, sheen, shade)
    maps = (np.clip(shade * 255, 0, 255), np.clip(sheen, 0, 255))
    return tuple(  # type: ignore[return-value]
        Image.fromarray(m.astype(np.uint8), "L").resize((size, size), Image.Resampling.BILINEAR)
        for m in maps
    )


def _child_light(
    look: Look,
    u: np.ndarray,
    v: np.ndarray,
    inside: np.ndarray,
    sheen: np.ndarray,
    shade: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Sheen and shade for a child's face: full cheeks lit in a band below the eyes, a round
    forehead (or a fringe) shading the brows, and on boys the nose shading the upper lip.

    The classifier reads these drawn children as 23-25 without them (benchmarks/face_cues.py);
    the age model's gradient on the children's aligned face chips (a lit band across the
    cheeks, a dark one over the brows; benchmarks/face_age_gradient.py) is where they came from.
    `inside` is the light's strength times the head's mask, `u`, `v` the face units of the grid.
    """

    def bump(cv: float, su: float, sv: float) -> np.ndarray:
        return np.exp(-0.5 * ((u / su) ** 2 + ((v - cv) / sv) ** 2))

    sheen = sheen + inside * CHILD_BAND * bump(look.nose_y + BAND_DY, 1.0, 0.15)
    dark = CHILD_BROW * bump(look.brow_y - BROW_DY, 1.0, 0.14)
    if look.gender == "male":
        dark = dark + BOY_LIP * bump((look.nose_y + look.mouth_y) / 2, 0.2, 0.15)
    return sheen, shade * (1 - inside * dark / 160)


def _gradient_position(style: str, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """0 where a background gradient starts, 1 at its far end, over frame fractions fx, fy."""
    if style == "vertical":
        return np.broadcast_to(fy, (len(fy), fx.shape[1]))
    if style == "diagonal":
        return (fx + fy) / 2
    if style == "vignette":
        return np.clip(np.hypot(fx - 0.5, fy - 0.5) / 0.7, 0, 1)
    return np.zeros((len(fy), fx.shape[1]))


@dataclass(frozen=True)
class _Pose:
    """Small random head pose and light for one face; `matrix` maps face units to output pixels."""

    matrix: np.ndarray
    yaw: float  # degrees; positive turns the face towards the image's right
    roll: float  # degrees
    zoom: float
    light_x: float  # -1 light from the image's left, +1 from its right

    @classmethod
    def sample(cls, rng: np.random.Generator, look: Look, size: int) -> _Pose:
        roll = float(np.clip(rng.normal(0, 3.5), -8, 8))
        yaw = float(np.clip(rng.normal(0, 6), -12, 12))
        zoom = float(rng.uniform(0.94, 1.06))
        shift = rng.uniform(-6, 6, 2)
        light_x = float(rng.uniform(-0.9, 0.9))
        # Scale, roll about the middle of the head, then place that middle near the frame centre.
        c, s = math.cos(math.radians(roll)), math.sin(math.radians(roll))
        linear = size / 256 * _UNIT * zoom * np.array([[c, -s], [s, c]])
        centre = (np.array([128.0, 112.0]) + shift) * size / 256
        mid = np.array([0.0, (look.skull_top + look.chin_y) / 2])
        matrix = np.column_stack([linear, centre - linear @ mid])
        return cls(matrix, yaw, roll, zoom, light_x)

    @property
    def lighting(self) -> str:
        side = "left" if self.light_x < 0 else "right"
        if abs(self.light_x) < 0.25:
            return "front"
        return side if abs(self.light_x) > 0.6 else f"front-{side}"


def _draw_face(pen: Pen, look: Look, light_x: float) -> None:
    """All parts, back to front."""
    draw_back_hair(pen, look)
    draw_body(pen, look)
    draw_head(pen, look)
    draw_nose(pen, look, light_x)
    draw_eyes(pen, look)
    draw_brows(pen, look)
    draw_beard(pen, look)
    draw_wrinkles(pen, look)  # over the beard: covered folds made bearded men read 30 years younger
    draw_mouth(pen, look)
    draw_moustache(pen, look)
    draw_front_hair(pen, look)
    draw_glasses(pen, look)


class ProceduralFaceSimulator:
    """Draws varied, deterministic, realistic-looking cartoon faces for any bucket; no weights."""

    name = "procedural-simulator-v1"

    def __init__(self, size: int = 256) -> None:
        """`size` is the square output size in pixels, from 64 to 1024."""
        if not isinstance(size, int) or not SIZE_RANGE[0] <= size <= SIZE_RANGE[1]:
            raise InvalidInputError(
                f"size must be an integer from {SIZE_RANGE[0]} to {SIZE_RANGE[1]} pixels, "
                f"got {size!r}"
            )
        self.size = size
        # Sensor-like grain, made once and cropped at a per-face offset.
        grain = np.random.default_rng(0).normal(_GRAIN_BIAS, 2.5, (size + 32, size + 32))
        self._grain = Image.fromarray(np.clip(grain, 0, 2 * _GRAIN_BIAS).astype(np.uint8), "L")

    def generate(self, bucket: Bucket | str, n: int, seed: int) -> list[GeneratedFace]:
        """`n` faces for `bucket` (a Bucket or "female/adult"), `n` from 1 to 10,000.

        The same (bucket, n, seed) always gives byte-identical images. Face i carries its own
        seed, `derive_face_seed(seed, bucket, i)`, which `render` turns back into that face.
        """
        bucket = Bucket.parse(bucket) if isinstance(bucket, str) else bucket
        if (
            isinstance(n, bool)
            or not isinstance(n, int)
            or not COUNT_RANGE[0] <= n <= COUNT_RANGE[1]
        ):
            raise InvalidInputError(
                f"n must be an integer from {COUNT_RANGE[0]} to {COUNT_RANGE[1]}, got {n!r}"
            )
        return [self.render(bucket, derive_face_seed(seed, bucket, i)) for i in range(n)]

    def render(self, bucket: Bucket | str, face_seed: int) -> GeneratedFace:
        """Draw the one face that `face_seed` (a `GeneratedFace.seed`) stands for in `bucket`."""
        bucket = Bucket.parse(bucket) if isinstance(bucket, str) else bucket
        _check_seed(face_seed)
        rng = np.random.default_rng(face_seed)
        look, attributes = sample_look(bucket, rng)
        colour, style, depth, scene = _backdrop(rng)
        image = Image.new("RGB", (self.size * _SUPERSAMPLE,) * 2, colour)
        pose = _Pose.sample(rng, look, self.size)
        pen = Pen(image, pose.matrix * _SUPERSAMPLE, math.radians(pose.yaw))
        _draw_face(pen, look, pose.light_x)

        inverse = np.linalg.inv(np.vstack([pose.matrix, [0, 0, 1]]))[:2]
        yaw = math.radians(pose.yaw)
        shade, sheen = _light_map(look, inverse, yaw, pose.light_x, (style, depth), self.size)
        ox, oy = (int(v) for v in rng.integers(0, 32, 2))
        # 8-bit PIL operations throughout: float numpy images cost more than all the drawing.
        lit = ImageChops.multiply(image.reduce(_SUPERSAMPLE), Image.merge("RGB", (shade,) * 3))
        grain = self._grain.crop((ox, oy, ox + self.size, oy + self.size))
        texture = Image.merge("RGB", (ImageChops.add(sheen, grain),) * 3)
        out = ImageChops.add(lit, texture, offset=-_GRAIN_BIAS)

        # The face box runs from the forehead just above the brows down to the chin.
        outline = head_outline(look)
        outline = outline[outline[:, 1] > look.brow_y - 0.35]
        pts = np.array(pen.xy(outline)).reshape(-1, 2) / _SUPERSAMPLE
        lo = np.clip(np.floor(pts.min(axis=0)), 0, self.size - 1).astype(int).tolist()
        hi = np.clip(np.ceil(pts.max(axis=0)), 0, self.size - 1).astype(int).tolist()

        attributes |= scene | {
            "gender": look.gender,
            "age_group": look.age_group,
            "age": look.age,
            "skin_tone": hex_color(look.skin),
            "face_shape": look.face_shape,
            "eye_shape": look.eye_shape,
            "hair_style": look.hair_style,
            "hair_color": hex_color(look.hair),
            "facial_hair": look.facial_hair,
            "glasses": look.glasses != "none",
            "glasses_style": look.glasses,
            "wrinkles": round(look.wrinkles, 3),
            "earrings": bool(look.earrings),
            "freckles": bool(look.freckles),
            "clothing": hex_color(look.clothing),
            "neckline": look.neckline,
            "lighting": pose.lighting,
            "yaw": round(pose.yaw, 2),
            "roll": round(pose.roll, 2),
            "scale": round(pose.zoom, 3),
        }
        box = (lo[0], lo[1], hi[0], hi[1])
        return GeneratedFace(out, bucket, face_seed, attributes, face_box=box)


_SEED_LIMIT = 2**64


def _check_seed(seed: int) -> None:
    if (
        isinstance(seed, bool)
        or not isinstance(seed, int | np.integer)
        or not 0 <= seed < _SEED_LIMIT
    ):
        raise InvalidInputError(f"seed must be an integer from 0 to 2**64 - 1, got {seed!r}")


def derive_face_seed(seed: int, bucket: Bucket, index: int) -> int:
    """The seed of face `index` in a batch made with `seed` for `bucket`, via SeedSequence.

    53 bits, so it is exact in JSON numbers and fits a signed 64-bit column.
    """
    _check_seed(seed)
    key = (GENDERS.index(bucket.gender), AGE_GROUPS.index(bucket.age_group), index)
    state = np.random.SeedSequence(entropy=int(seed), spawn_key=key).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(11))
