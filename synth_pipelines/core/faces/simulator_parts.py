"""Drawing the parts of a procedural face: geometry, the pen, and one function per feature.

Every shape is described in *face units*: the origin sits between the eyes on the eye line, one
unit is half the face width at the cheekbones, y grows downwards. `Pen` maps face units to pixels
(pose, scale, supersampling) and fakes head yaw by shifting each point by its depth.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from synth_pipelines.core.faces.simulator_looks import Color, Look, mix, scale

_UNIT_CIRCLE = {
    n: np.stack([np.cos(t), np.sin(t)], axis=1)
    for n in (24, 40)
    for t in [np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)]
}


def rgba(c: Color, alpha: float) -> tuple[int, int, int, int]:
    """An RGB colour with alpha in [0, 1], for blended fills."""
    return (c[0], c[1], c[2], max(0, min(255, int(alpha * 255))))


def ellipse_pts(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, n: int = 40):
    """Points of an ellipse rotated by `angle` radians, as an (n, 2) array."""
    pts = _UNIT_CIRCLE[n] * (rx, ry)
    if angle:
        c, s = math.cos(angle), math.sin(angle)
        pts = pts @ np.array([[c, s], [-s, c]])
    return pts + np.array([cx, cy])


@cache
def _bernstein(order: int, n: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    k = np.arange(order + 1)[None, :]
    return np.array([math.comb(order, i) for i in range(order + 1)]) * t**k * (1 - t) ** (order - k)


@cache
def _catmull(n: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
    return 0.5 * np.hstack(
        [-t + 2 * t**2 - t**3, 2 - 5 * t**2 + 3 * t**3, t + 4 * t**2 - 3 * t**3, -(t**2) + t**3]
    )


@cache
def _taper(n: int) -> np.ndarray:
    return np.sin(np.linspace(0.15, math.pi - 0.15, n)) ** 0.5


def bezier(*ctrl: tuple[float, float], n: int = 9) -> np.ndarray:
    """Points along a quadratic or cubic Bezier curve through the given control points."""
    return _bernstein(len(ctrl) - 1, n) @ np.asarray(ctrl, dtype=float)


def spline(points, n: int = 8) -> np.ndarray:
    """A Catmull-Rom curve through all `points`, ends clamped, `n` samples per segment."""
    p = np.asarray(points, dtype=float)
    p = np.vstack([p[:1], p, p[-1:]])
    windows = np.stack([p[:-3], p[1:-2], p[2:-1], p[3:]], axis=1)  # (segments, 4, 2)
    curve = (_catmull(n) @ windows).reshape(-1, 2)
    return np.vstack([curve, p[-2:-1]])


def mirror(pts: np.ndarray) -> np.ndarray:
    """The same points reflected across the face's vertical centre line."""
    return pts * np.array([-1.0, 1.0])


class Pen:
    """Draws face-unit shapes onto a pixel image.

    `matrix` (2x3) maps face units to pixels; `yaw` (radians) turns the head by moving points
    sideways in proportion to their depth `z` (nose tip ~1, face outline 0, ears below 0).
    """

    def __init__(self, image: Image.Image, matrix: np.ndarray, yaw: float) -> None:
        # Opaque fills go through plain RGB drawing, several times faster than blending.
        self.draw = ImageDraw.Draw(image)
        self.blend = ImageDraw.Draw(image, "RGBA")
        self.linear = (matrix[:, :2] * np.array([math.cos(yaw), 1.0])).T
        self.offset = matrix[:, 2]
        self.depth = matrix[:, 0] * math.sin(yaw)

    def xy(self, pts: np.ndarray, z: float = 0.0) -> list[float]:
        """Pixel coordinates of face-unit points at depth `z`, flattened for ImageDraw."""
        return (pts @ self.linear + (self.offset + z * self.depth)).ravel().tolist()

    def poly(self, pts: np.ndarray, fill, z: float = 0.0) -> None:
        self._fill(self.xy(pts, z), fill)

    def _fill(self, xy: list[float], fill) -> None:
        if len(fill) == 4 and fill[3] < 255:
            self.blend.polygon(xy, fill=fill)
        else:
            self.draw.polygon(xy, fill=fill[:3])

    def ellipse(self, cx, cy, rx, ry, fill, z: float = 0.0, angle: float = 0.0, n: int = 24):
        self.poly(ellipse_pts(cx, cy, rx, ry, angle, n), fill, z)

    def stroke(self, pts: np.ndarray, width, fill, z: float = 0.0, taper: bool = True) -> None:
        """A filled outline around a polyline, `width` in face units, pointed ends when tapered."""
        # Plain Python: for the ~10-point curves drawn here it is 3x faster than numpy.
        p = pts.tolist()
        n = len(p)
        if taper:
            half_widths = (width / 2.0 * _taper(n)).tolist()
        elif np.isscalar(width):
            half_widths = [width / 2.0] * n
        else:
            half_widths = (np.asarray(width) / 2.0).tolist()
        (a, b), (c, d) = self.linear.tolist()
        ox, oy = (self.offset + z * self.depth).tolist()
        left: list[float] = []
        right: list[tuple[float, float]] = []
        previous, following = [p[0], *p[:-1]], [*p[1:], p[-1]]
        for (x, y), (x0, y0), (x1, y1), hw in zip(p, previous, following, half_widths, strict=True):
            dx, dy = x1 - x0, y1 - y0
            k = hw / (math.hypot(dx, dy) or 1e-9)
            u, v = x - dy * k, y + dx * k
            left += (u * a + v * c + ox, u * b + v * d + oy)
            u, v = x + dy * k, y - dx * k
            right.append((u * a + v * c + ox, u * b + v * d + oy))
        for point in reversed(right):
            left += point
        self._fill(left, fill)


# ---------------------------------------------------------------- head, neck, body


def head_outline(k: Look) -> np.ndarray:
    """Closed outline of skull and face, right jaw down to chin, then the left side and skull."""
    jaw = spline(
        [
            (k.temple_w, -0.3),
            (k.cheek_w, 0.25),
            (k.jaw_w, k.jaw_y),
            (k.chin_w, k.chin_y - 0.07),
            (0.0, k.chin_y),
            (-k.chin_w, k.chin_y - 0.07),
        ],
        n=8,
    )[:-9]
    top_ry = -0.3 - k.skull_top
    t = np.linspace(math.pi, 2 * math.pi, 24)
    skull = np.stack([k.temple_w * np.cos(t), -0.3 + top_ry * np.sin(t)], axis=1)
    return np.vstack([skull[:-1], jaw, mirror(jaw[::-1])[1:-1]])


def draw_body(pen: Pen, k: Look) -> None:
    """Shoulders, clothing and neck, with the shadow the jaw casts on the neck."""
    skin_dark = scale(k.skin, 0.72)
    top = k.chin_y + 0.75 - 0.15 * k.child
    width = 2.7 - 0.7 * k.child + (0.25 if k.gender == "male" else 0.0)
    shoulders = spline(
        [(-width, 4.0), (-width, top + 0.6), (-width + 0.5, top + 0.1), (0.0, top - 0.05)], n=8
    )
    body = np.vstack([shoulders, mirror(shoulders[::-1])])
    pen.poly(body, k.clothing, z=-0.2)
    nw = k.neck_w
    neck = np.array([(-nw, 0.4), (nw, 0.4), (nw * 1.08, top + 0.5), (-nw * 1.08, top + 0.5)])
    depth = {"v": 0.75, "scoop": 0.55, "crew": 0.12, "collar": 0.35}[k.neckline]
    cut = bezier((-nw * 1.9, top + 0.05), (0.0, top + depth * 1.5), (nw * 1.9, top + 0.05), n=10)
    if k.neckline == "v":
        cut = np.array([(-nw * 1.5, top + 0.02), (0.0, top + depth), (nw * 1.5, top + 0.02)])
    pen.poly(np.vstack([neck[:2], cut[::-1]]), k.skin, z=-0.1)
    pen.ellipse(0.0, k.chin_y - 0.05, nw * 1.25, 0.42, rgba(skin_dark, 0.55), z=-0.1)
    pen.stroke(cut, 0.06, rgba(scale(k.clothing, 0.6), 0.8), z=-0.1, taper=False)
    if k.neckline == "collar":
        for s in (-1, 1):
            flap = np.array(
                [(s * nw * 0.2, top + 0.33), (s * nw * 1.9, top - 0.02), (s * nw * 2.1, top + 0.55)]
            )
            pen.poly(flap, scale(k.clothing, 1.12), z=-0.1)
            pen.stroke(
                flap[[0, 2, 1]], 0.03, rgba(scale(k.clothing, 0.6), 0.7), z=-0.1, taper=False
            )
    if k.age >= 60:
        for i in range(2):
            y = k.chin_y + 0.35 + 0.18 * i
            pen.stroke(
                bezier((-nw * 0.7, y), (0, y + 0.06), (nw * 0.7, y)), 0.025, rgba(skin_dark, 0.35)
            )


# Skin darker than this (mean RGB level, 0..1) gets its face lit brighter than the neck.
_FACE_LIGHT_FROM = 0.5


def face_skin(k: Look) -> Color:
    """The colour the head is filled with: the skin, lit brighter on the darkest tones.

    A photographer exposes for the face; without that, dlib's detector misses most faces of the
    darkest tones (benchmarks/face_cues.py). The neck keeps the skin as sampled, in the jaw's
    shadow, and `skin_tone` stays the sampled tone.
    """
    lum = sum(k.skin) / 765
    lift = max(0.0, (_FACE_LIGHT_FROM - lum) / _FACE_LIGHT_FROM)
    return mix(k.skin, scale(k.skin, 1.6), lift) if lift > 0 else k.skin


def draw_head(pen: Pen, k: Look) -> None:
    """Ears, then the head shape, then sheen, soft blush and eye sockets."""
    face = face_skin(k)
    dark = scale(face, 0.75)
    ry = 0.3 * k.ear_size
    for s in (-1, 1):
        cx, cy = s * (k.cheek_w - 0.02), 0.22 - 0.05 * k.child
        pen.ellipse(cx + s * 0.05, cy, 0.15 * k.ear_size, ry, face, z=-0.5, angle=s * 0.12)
        pen.ellipse(cx + s * 0.06, cy - 0.02, 0.08 * k.ear_size, ry * 0.65, rgba(dark, 0.6), z=-0.5)
        if k.earrings:
            pen.ellipse(cx + s * 0.05, cy + ry * 0.95, 0.035, 0.035, (225, 200, 120), z=-0.5)
    pen.poly(head_outline(k), face)
    # Darker skin photographs with sheen on the forehead and down the nose; without it dlib's
    # detector misses most of the darkest faces (benchmarks/face_cues.py). Sheen on the
    # cheekbones too found as many but read boys as girls. Soft: three layers, each smaller.
    sheen = 0.45 * (1 - sum(k.skin) / 765)
    lit = scale(k.skin, 1.45)
    for r in (1.0, 0.7, 0.45):
        pen.ellipse(0.0, k.brow_y - 0.3, 0.45 * r, 0.2 * r, rgba(lit, sheen), z=0.4)
        pen.ellipse(0.0, k.nose_y * 0.45, 0.06 * r, k.nose_y * 0.35 * r, rgba(lit, sheen), z=0.9)
    if k.blush > 0:
        for s in (-1, 1):
            pen.ellipse(s * 0.55, 0.45, 0.22, 0.14, rgba((215, 90, 90), k.blush), z=0.4)
    for s in (-1, 1):
        pen.ellipse(s * k.eye_x, -0.02, k.eye_rx * 1.55, k.eye_ry * 2.6, rgba(dark, 0.35), z=0.4)
    if k.freckles:
        rng = np.random.default_rng(int(k.skin[0] * 7 + k.age))
        for x, y in rng.uniform((-0.45, 0.25), (0.45, 0.5), size=(18, 2)):
            pen.ellipse(x, y, 0.014, 0.014, rgba(scale(k.skin, 0.7), 0.6), z=0.6, n=24)


# ---------------------------------------------------------------- eyes, brows, nose, mouth


def _lids(k: Look, n: int = 11):
    """Upper and lower lid curves of the right eye, centred at 0, shared by the eye parts."""
    x = np.linspace(-k.eye_rx, k.eye_rx, n)
    u = 1 - (x / k.eye_rx) ** 2
    peak = {"almond": 0.0, "round": 0.0, "hooded": 0.15, "monolid": -0.1, "downturned": 0.25}
    bias = 1 + peak.get(k.eye_shape, 0.0) * (-x / k.eye_rx)
    upper = -k.eye_ry * u**0.75 * bias
    lower = k.eye_ry * (0.8 if k.eye_shape != "round" else 0.95) * u**0.9
    return x, upper, lower


def draw_eyes(pen: Pen, k: Look) -> None:
    """Both eyes: white, clipped iris and pupil, lids, lashes, crease and catch-light."""
    x, upper, lower = _lids(k)
    upper_lid, lower_lid = np.stack([x, upper], axis=1), np.stack([x, lower], axis=1)
    white = np.vstack([upper_lid, lower_lid[::-1]])
    lash = (35, 25, 25)
    crease_c = rgba(scale(k.skin, 0.6), 0.55)
    ri = k.eye_ry * (1.15 + 0.25 * k.child)
    # Iris ring, iris and pupil as circles clipped to the opening between the lids.
    radii = np.array([ri, ri * 0.8, ri * (0.42 - 0.07 * k.child)])
    rings = (_UNIT_CIRCLE[24][None] * radii[:, None, None]).reshape(-1, 2)
    rings[:, 0] -= 0.012  # eyes converge a little
    rings[:, 0] = np.clip(rings[:, 0], x[0], x[-1])
    rings[:, 1] = np.clip(
        rings[:, 1], np.interp(rings[:, 0], x, upper), np.interp(rings[:, 0], x, lower)
    )
    ring_colors = (scale(k.iris, 0.55), k.iris, (12, 10, 10))
    wing = np.array([(k.eye_rx * 0.9, -k.eye_ry * 0.2), (k.eye_rx * 1.15, -k.eye_ry * 0.55)])
    lift = 0.55 if k.eye_shape == "hooded" else 0.75 + 0.3 * k.child
    crease = np.stack([x * 0.9, upper - k.eye_ry * lift], axis=1)
    bag = np.stack([x * 0.8, lower + k.eye_ry * (0.7 + 0.3 * k.wrinkles)], axis=1)
    for s in (-1, 1):
        # Mirror the left eye so inner corners face the nose, then tilt the outer corner up.
        c, sn = math.cos(s * k.eye_tilt), math.sin(-s * k.eye_tilt)
        m, at = np.array([[s * c, s * sn], [-sn, c]]), np.array([s * k.eye_x, 0.0])

        def place(pts: np.ndarray, _m=m, _at=at) -> np.ndarray:
            return pts @ _m + _at

        pen.poly(place(white), (238, 234, 228), z=0.45)
        placed = place(rings)
        for i, color in enumerate(ring_colors):
            pen.poly(placed[i * 24 : (i + 1) * 24], color, z=0.45)
        # The catch-light sits on the same side in both eyes: it reflects one light.
        glint_x = s * (k.eye_x - 0.012) + ri * 0.3
        pen.ellipse(glint_x, -ri * 0.3, ri * 0.16, ri * 0.16, (250, 250, 250, 220), z=0.45, n=24)
        pen.stroke(place(upper_lid), 0.02 + 0.03 * k.lashes, lash, z=0.45)
        if k.lashes > 0.5:
            pen.stroke(place(wing), 0.03, lash, z=0.45)
        pen.stroke(place(lower_lid), 0.012, rgba(scale(k.skin, 0.55), 0.7), z=0.45)
        if k.eye_shape != "monolid":
            pen.stroke(place(crease), 0.02, crease_c, z=0.45)
        if k.wrinkles > 0.35:
            pen.stroke(place(bag), 0.02, rgba(scale(k.skin, 0.6), 0.5 * k.wrinkles), z=0.45)


# Brow thickness along its length: blunt at the nose end, thickest early, pointed at the tail.
_BROW_PROFILE = np.interp(np.linspace(0, 1, 12), [0, 0.2, 0.6, 1], [0.8, 1.25, 0.95, 0.15])


def draw_brows(pen: Pen, k: Look) -> None:
    """Two tapered brows; `brow_w` is their thickness, `brow_arch` the rise of the outer third."""
    x0, x1 = k.eye_x - k.eye_rx * 1.1, k.eye_x + k.eye_rx * 1.35
    for s in (-1, 1):
        pts = bezier(
            (s * x0, k.brow_y + 0.02),
            (s * (x0 + (x1 - x0) * 0.65), k.brow_y - k.brow_arch),
            (s * x1, k.brow_y + 0.07 - s * 0.0),
            n=12,
        )
        pen.stroke(pts, k.brow_w * _BROW_PROFILE, rgba(k.brow_color, 0.92), z=0.45, taper=False)


def draw_nose(pen: Pen, k: Look, light: float) -> None:
    """Nose from shading: side walls darker away from the light, wings, nostrils, a lit tip."""
    y, w = k.nose_y, k.nose_w
    dark = scale(k.skin, 0.6)
    away = 1 if light < 0 else -1
    for s in (-1, 1):
        alpha = 0.32 if s == away else 0.14
        wall = bezier((s * 0.1, -0.02), (s * 0.13, y * 0.55), (s * w * 0.95, y - 0.05), n=8)
        pen.stroke(wall, 0.07, rgba(dark, alpha), z=0.75)
    pen.ellipse(0.0, y + 0.06, w * 0.95, 0.065, rgba(dark, 0.5), z=0.85)
    pen.ellipse(0.0, y - 0.03, w * 0.5, 0.085, rgba(scale(k.skin, 1.12), 0.55), z=1.0)
    pen.ellipse(-away * 0.02, y * 0.45, 0.035, y * 0.3, rgba(scale(k.skin, 1.12), 0.35), z=0.9)
    for s in (-1, 1):
        wing = bezier(
            (s * w * 0.5, y - 0.11), (s * w * 1.3, y - 0.03), (s * w * 0.55, y + 0.07), n=8
        )
        pen.stroke(wing, 0.04, rgba(dark, 0.65), z=0.8)
        pen.ellipse(
            s * w * 0.42, y + 0.04, w * 0.27, 0.035, rgba((55, 28, 22), 0.8), z=0.85, angle=s * 0.35
        )
    philtrum = np.array([(0.0, y + 0.1), (0.0, k.mouth_y - k.lip_top - 0.01)])
    pen.stroke(philtrum, 0.06, rgba(dark, 0.15), z=0.75)


def mouth_shape(k: Look) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper lip, lower lip (closed outlines) and the line between them."""
    y, w = k.mouth_y, k.mouth_w
    corner = y - k.smile
    line = bezier(
        (-w, corner),
        (-w * 0.4, y + 0.03 + k.smile * 0.6),
        (w * 0.4, y + 0.03 + k.smile * 0.6),
        (w, corner),
    )
    bow = y - k.lip_top
    top = spline(
        [
            (-w, corner),
            (-w * 0.5, bow + 0.02),
            (-w * 0.16, bow),
            (0.0, bow + 0.035),
            (w * 0.16, bow),
            (w * 0.5, bow + 0.02),
            (w, corner),
        ],
        n=5,
    )
    bottom = bezier(
        (w, corner),
        (w * 0.6, y + k.lip_bottom * 1.25),
        (-w * 0.6, y + k.lip_bottom * 1.25),
        (-w, corner),
    )
    return np.vstack([top, line[::-1]]), np.vstack([line, bottom]), line


def draw_mouth(pen: Pen, k: Look) -> None:
    """Lips in lip colour, a darker parting line, a highlight on the lower lip."""
    upper, lower, line = mouth_shape(k)
    pen.ellipse(
        0.0,
        k.mouth_y + k.lip_bottom + 0.08,
        k.mouth_w * 0.5,
        0.05,
        rgba(scale(k.skin, 0.7), 0.35),
        z=0.6,
    )
    pen.poly(lower, k.lip, z=0.6)
    pen.poly(upper, scale(k.lip, 0.85), z=0.6)
    pen.stroke(line, 0.028, rgba(scale(k.lip, 0.35), 0.9), z=0.6)
    y = k.mouth_y + k.lip_bottom * 0.55
    pen.ellipse(0.0, y, k.mouth_w * 0.35, k.lip_bottom * 0.22, rgba((255, 255, 255), 0.18), z=0.6)


def _crease(pen: Pen, k: Look, pts: np.ndarray, width: float, alpha: float, z: float) -> None:
    """A skin crease: a dark line with a lit ridge just above it, so it reads on any skin tone."""
    pen.stroke(
        pts - np.array([0.0, width * 0.9]), width, rgba(scale(k.skin, 1.25), alpha * 0.6), z=z
    )
    pen.stroke(pts, width, rgba(scale(k.skin, 0.5), alpha), z=z)


def draw_wrinkles(pen: Pen, k: Look) -> None:
    """Age lines whose number and strength grow with `wrinkles`: forehead, bags under the eyes,
    crow's feet, folds. Drawn over a beard: the folds show through it."""
    w = k.wrinkles
    if w <= 0.05:
        return
    a = 0.15 + 0.55 * w
    for i in range(int(1 + 3.5 * w)):
        y = k.brow_y - 0.22 - 0.12 * i
        line = bezier((-0.5, y + 0.03), (0.0, y - 0.04), (0.5, y + 0.03))
        _crease(pen, k, line, 0.022, a * (1 - 0.15 * i), z=0.3)
    for s in (-1, 1):
        start = (s * (k.nose_w * 1.2), k.nose_y - 0.05)
        end = (s * (k.mouth_w + 0.08), k.mouth_y + 0.1)
        fold = bezier(start, (s * (k.nose_w * 1.2 + 0.2), k.nose_y + 0.15), end)
        # The nose-to-mouth fold deepens faster than the rest: the age cue classifiers read most.
        fold_depth = w * (1 + 1.2 * w)
        _crease(pen, k, fold, 0.03 + 0.015 * fold_depth, 0.1 + 0.6 * fold_depth, z=0.6)
        if w > 0.35:
            # Bags under the eyes: two creases, the cue that moves an old man's age most.
            xs = np.linspace(-k.eye_rx * 0.9, k.eye_rx * 0.9, 9)
            arc = 0.05 * (1 - (xs / k.eye_rx) ** 2)
            for j in range(2):
                bag = np.stack([s * k.eye_x + xs, k.eye_ry * 0.8 + 0.06 + 0.05 * j + arc], axis=1)
                _crease(pen, k, bag, 0.022, min(1.0, 0.8 * a), z=0.45)
        if w > 0.4:
            ox = s * (k.eye_x + k.eye_rx + 0.05)
            for j in (-1, 1):
                seg = np.array([(ox, j * 0.04), (ox + s * 0.14, j * 0.09)])
                pen.stroke(seg, 0.02, rgba(scale(k.skin, 0.5), a), z=0.4)
        if w > 0.6:
            corner = (s * k.mouth_w, k.mouth_y - k.smile)
            jowl = bezier(
                corner,
                (s * (k.mouth_w + 0.05), k.mouth_y + 0.2),
                (s * (k.mouth_w + 0.02), k.chin_y - 0.2),
            )
            # Marionette lines from the mouth corners: deep, as the fold above them.
            _crease(pen, k, jowl, 0.048, min(1.0, a * 1.28), z=0.5)


# ---------------------------------------------------------------- facial hair and glasses


def _beard_area(k: Look, grow: float) -> np.ndarray:
    """Jaw, chin and upper lip below a line from the sideburns under the cheekbones to the nose."""
    outline = head_outline(k)
    lower = outline[outline[:, 1] > 0.15]
    inner = spline(
        [
            (k.cheek_w * 0.98, 0.15),
            (0.6, 0.55),
            (k.nose_w * 1.5, k.nose_y + 0.08),
            (0.0, k.nose_y + 0.1),
        ]
    )
    return np.vstack([lower * grow, mirror(inner), inner[::-1]])


def draw_beard(pen: Pen, k: Look) -> None:
    """Stubble, beard or shave shadow; a moustache goes on top later with `draw_moustache`."""
    if k.facial_hair == "none":
        if k.shave > 0:
            pen.poly(
                _beard_area(k, 1.0), rgba(mix(k.beard_color, (60, 70, 90), 0.5), k.shave), z=0.2
            )
        return
    if k.facial_hair == "moustache":
        return
    alpha = {"stubble": 0.35, "goatee": 1.0, "beard": 1.0, "fuzz": 0.16}[k.facial_hair]
    col = rgba(k.beard_color, alpha)
    if k.facial_hair == "goatee":
        pen.poly(ellipse_pts(0.0, k.chin_y - 0.25, k.mouth_w + 0.08, 0.33), col, z=0.4)
    else:
        pen.poly(_beard_area(k, 1.06 if k.facial_hair == "beard" else 1.0), col, z=0.2)
    if k.facial_hair == "beard":
        pen.poly(mouth_shape(k)[1] * 1.12 + (0, -0.1), rgba(scale(k.beard_color, 0.7), 0.4), z=0.6)


def draw_moustache(pen: Pen, k: Look) -> None:
    """A moustache over the upper lip for the styles that have one."""
    if k.facial_hair not in ("moustache", "beard", "goatee"):
        return
    # From just under the nose down over the top of the upper lip, ends drooping at the corners.
    y, w, top_y = k.mouth_y - k.lip_top * 0.4, k.mouth_w + 0.05, k.nose_y + 0.08
    top = bezier((-w, y + 0.07), (-w * 0.6, top_y), (w * 0.6, top_y), (w, y + 0.07))
    bottom = bezier((w, y + 0.07), (w * 0.5, y - 0.01), (-w * 0.5, y - 0.01), (-w, y + 0.07))
    pen.poly(np.vstack([top, bottom]), k.beard_color, z=0.7)
    pen.stroke(
        top[2:-2] + np.array([0.0, 0.03]), 0.025, rgba(scale(k.beard_color, 1.3), 0.4), z=0.7
    )


def draw_glasses(pen: Pen, k: Look) -> None:
    """Frames around both eyes, a bridge, and arms running back towards the ears."""
    if k.glasses == "none":
        return
    thick = 0.045 if k.glasses in ("thick", "round") else 0.022
    rx, ry = k.eye_rx * 1.6, k.eye_rx * (1.3 if k.glasses == "round" else 1.05)
    power = 2.0 if k.glasses == "round" else 4.0
    t = np.linspace(0.0, 2 * math.pi, 40)
    ux = np.sign(np.cos(t)) * np.abs(np.cos(t)) ** (2 / power)
    uy = np.sign(np.sin(t)) * np.abs(np.sin(t)) ** (2 / power)
    for s in (-1, 1):
        cx = s * k.eye_x * 1.03
        rim = np.stack([cx + rx * ux, 0.02 + ry * uy], axis=1)
        pen.poly(rim, (255, 255, 255, 30), z=0.55)
        pen.stroke(np.vstack([rim, rim[:2]]), thick, k.glasses_color, z=0.55, taper=False)
        arm = np.array([(cx + s * rx, -0.02), (s * (k.cheek_w + 0.02), 0.0)])
        pen.stroke(arm, thick * 0.9, k.glasses_color, z=0.1, taper=False)
    bridge = bezier((-k.eye_x + rx * 0.95, -0.03), (0.0, -0.1), (k.eye_x - rx * 0.95, -0.03), n=6)
    pen.stroke(bridge, thick * 0.8, k.glasses_color, z=0.75, taper=False)
