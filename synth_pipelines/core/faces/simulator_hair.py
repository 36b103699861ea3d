"""Hair for the procedural face: the mass behind the head, the cap over the skull, side curtains.

Shapes are in the face units of `simulator_parts` (one unit is half the face width, the eye line
at y=0). The skull is an ellipse centred at (0, -0.3); hair grows outward from it.
"""

from __future__ import annotations

import math

import numpy as np

from synth_pipelines.core.faces.simulator_looks import Look, scale
from synth_pipelines.core.faces.simulator_parts import (
    Pen,
    bezier,
    mirror,
    rgba,
    spline,
)

# Styles whose hair falls past the ears and frames the face from both sides.
_CURTAINS = frozenset({"long", "bangs", "bob", "curly_long"})
_BUMPY = {"curly": 0.07, "curly_long": 0.06, "afro": 0.05, "messy": 0.06}


def _skull_arc(k: Look, grow: float, side_y: float, n: int = 32, bumps: float = 0.0) -> np.ndarray:
    """The skull ellipse grown by `grow`, from the right at `side_y` over the top to the left."""
    rx, ry = k.temple_w + grow, (-0.3 - k.skull_top) + grow * 1.25
    start = math.asin(max(-1.0, min(1.0, (side_y + 0.3) / ry)))
    t = np.linspace(start, math.pi - start - 2 * math.pi, n)
    r = 1.0 + (bumps * np.abs(np.sin(t * 7.0 + k.part * 3)) if bumps else 0.0)
    return np.stack([rx * np.cos(t) * r, -0.3 + ry * np.sin(t) * r], axis=1)


def _hairline(k: Look) -> np.ndarray:
    """Where hair meets forehead, left to right, as y over x; fringes come down near the brows."""
    h, tw, style = k.hairline, k.temple_w, k.hair_style
    x = np.linspace(-0.9, 0.9, 19)
    ax = np.abs(x) / 0.9
    y = h + 0.3 * ax**3
    if style == "receding":
        y = y - 0.28 * np.exp(-(((ax - 0.62) / 0.2) ** 2)) - 0.1
    elif style in ("bangs", "bob") and abs(k.part) < 0.6:
        y = np.minimum(k.brow_y - 0.1 + 0.08 * ax**2, y + 0.6)
    elif style in ("pixie", "messy", "bob", "curly_long") or (style == "short" and k.part > 0.5):
        # A fringe swept from the parting side down towards the other brow.
        side = 1.0 if k.part > 0 else -1.0
        t = (1 + side * x / 0.9) / 2
        low = k.brow_y - 0.12
        y = np.minimum(y, h + 0.1 + (low - h - 0.1) * t**1.3 + 0.2 * ax**4)
        if style == "messy":
            y = y + 0.05 * (np.arange(len(x)) % 2)
    left = [(-(tw - 0.04), 0.0), (-0.95, min(-0.45, float(y[0]) + 0.15))]
    right = [(0.95, min(-0.45, float(y[-1]) + 0.15)), (tw - 0.04, 0.0)]
    return np.vstack([left, np.stack([x, y], axis=1), right])


def _strands(pen: Pen, k: Look, line: np.ndarray, top: tuple[float, float], n: int) -> None:
    """Thin lighter and darker strokes from the hairline back over the crown: texture."""
    dark, light = rgba(scale(k.hair, 0.6), 0.3), rgba(scale(k.hair, 1.4), 0.22)
    idx = np.linspace(2, len(line) - 3, n).astype(int)
    for j, i in enumerate(idx):
        p = line[i]
        mid = (p[0] * 1.08, (p[1] + top[1]) / 2 - 0.05)
        end = (top[0] + p[0] * 0.35, top[1])
        pen.stroke(bezier(tuple(p), mid, end), 0.018, dark if j % 2 else light)


def draw_back_hair(pen: Pen, k: Look) -> None:
    """Hair behind head and neck: long and bob lengths, afro volume, ponytail, pigtails, bun."""
    style, vol = k.hair_style, k.hair_volume
    if style in _CURTAINS or style in ("afro", "curly"):
        if style == "curly" and k.gender == "male":
            return
        bottom = {"bob": k.chin_y + 0.1, "afro": 0.6, "curly": 1.3}.get(style, k.hair_length)
        wide = k.cheek_w + 0.35 + (0.25 if style in ("afro", "curly", "curly_long") else 0.1)
        arc = _skull_arc(k, vol + 0.05, -0.1, bumps=_BUMPY.get(style, 0.0))
        sides = np.array([(-wide, bottom), (wide, bottom)])
        pen.poly(np.vstack([arc, sides]), scale(k.hair, 0.8), z=-0.6)
    elif style == "ponytail":
        s = 1 if k.part > 0 else -1
        pen.ellipse(s * 1.05, 0.9, 0.25, 0.9, scale(k.hair, 0.85), z=-0.6, angle=-s * 0.25)
    elif style == "pigtails":
        for s in (-1, 1):
            # Tied high on the side, hanging down and outwards.
            pen.ellipse(s * (k.temple_w + 0.27), 0.05, 0.19, 0.5, k.hair, z=-0.6, angle=-s * 0.46)
    elif style == "bun":
        top = k.skull_top - vol
        pen.ellipse(0.0, top - 0.15, 0.38, 0.3, scale(k.hair, 0.95), z=-0.2)


def draw_front_hair(pen: Pen, k: Look) -> None:
    """The cap over the skull and the curtains beside the face, drawn after the face."""
    style, vol = k.hair_style, k.hair_volume
    if style == "bald":
        # A fringe of hair around the sides and back, seen from the front as two crescents.
        x0 = k.temple_w
        side = spline([(x0 - 0.03, -0.6), (x0 + 0.08, -0.2), (x0 + 0.03, 0.15)], n=5)
        inner = spline([(x0 - 0.08, 0.12), (x0 - 0.06, -0.25), (x0 - 0.03, -0.6)], n=5)
        crescent = np.vstack([side, inner])
        for shape in (crescent, mirror(crescent)):
            pen.poly(shape, rgba(k.hair, 0.9), z=-0.2)
        return
    line = _hairline(k)
    side_y = 0.0 if style not in _CURTAINS else -0.2
    arc = _skull_arc(k, vol, side_y, bumps=_BUMPY.get(style, 0.0))
    alpha = 0.72 if style == "buzz" else 1.0
    pen.poly(np.vstack([arc, line]), rgba(k.hair, alpha))
    crown = (0.0, k.skull_top - vol * 0.6)
    if style != "buzz":
        _strands(pen, k, line, crown, 7)
    sheen = _skull_arc(k, vol * 0.7, -0.6, n=14)[3:11]
    pen.stroke(sheen, 0.09, rgba(scale(k.hair, 1.5), 0.22))
    if style in _CURTAINS:
        _curtains(pen, k, vol)
    if style == "side_part":
        x = 0.45 if k.part > 0 else -0.45
        part = bezier(
            (x, k.hairline + 0.05), (x * 1.05, k.hairline - 0.3), (x * 0.8, k.skull_top - vol * 0.5)
        )
        pen.stroke(part, 0.035, rgba(scale(k.hair, 0.45), 0.7))
    if style == "bun":
        pen.stroke(
            bezier(
                (-0.2, k.skull_top - vol), (0.0, k.skull_top - vol - 0.08), (0.2, k.skull_top - vol)
            ),
            0.04,
            rgba(scale(k.hair, 0.5), 0.6),
        )
    if style == "pigtails":
        for s in (-1, 1):
            pen.ellipse(s * (k.temple_w + 0.05), -0.4, 0.07, 0.07, (220, 60, 90), z=-0.4)


def _curtains(pen: Pen, k: Look, vol: float) -> None:
    """Two locks falling beside the face; bobs end near the chin and curl in."""
    bottom = k.chin_y + 0.15 if k.hair_style == "bob" else k.hair_length
    flare = 0.15 if k.hair_style == "bob" else 0.3
    inner_x = k.cheek_w - 0.1
    for s in (-1, 1):
        inner = spline(
            [
                (0.55, k.hairline + 0.05),
                (0.86, -0.35),
                (inner_x, 0.45),
                (k.jaw_w - 0.02, min(bottom, k.jaw_y + 0.2)),
                (inner_x + 0.05, bottom),
            ],
            n=6,
        )
        outer = spline(
            [
                (inner_x + 0.45 + flare, bottom),
                (k.cheek_w + vol + 0.15, 0.6),
                (k.temple_w + vol, -0.3),
                (0.75, -1.0),
            ],
            n=6,
        )
        shape = np.vstack([inner, outer])
        if s < 0:
            shape = mirror(shape)
        pen.poly(shape, k.hair, z=-0.1)
        for j in range(2):
            t = 0.3 + 0.35 * j
            a = shape[int(t * (len(inner) - 1))]
            b = (s * (inner_x + 0.1 + t * 0.35), bottom - 0.1)
            pen.stroke(
                bezier(tuple(a), (a[0] + s * 0.08, (a[1] + b[1]) / 2), b),
                0.03,
                rgba(scale(k.hair, 0.6), 0.45),
                z=-0.1,
            )
    if k.hair_style == "bob":
        for s in (-1, 1):
            pen.ellipse(
                s * (inner_x + 0.3),
                bottom - 0.02,
                0.35,
                0.08,
                rgba(scale(k.hair, 0.7), 0.6),
                z=-0.1,
            )
