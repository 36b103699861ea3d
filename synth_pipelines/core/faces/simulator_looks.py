"""What a procedural face looks like: every trait sampled from bucket-dependent distributions.

`sample_look` turns a bucket and a random generator into a `Look` (proportions, skin, eyes, hair,
facial hair, age lines, clothes). Children get big eyes low in a round face, seniors grey hair,
wrinkles and thinner lips; men heavier brows, wider jaws and facial hair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from synth_pipelines.core.faces.buckets import AGE_RANGES, Bucket

Color = tuple[int, int, int]


def mix(a: Color, b: Color, t: float) -> Color:
    """Blend two RGB colours; t=0 gives a, t=1 gives b."""
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def scale(c: Color, f: float) -> Color:
    """Darken (f<1) or brighten (f>1) a colour, clipped to the RGB range."""
    return tuple(min(255, max(0, round(x * f))) for x in c)  # type: ignore[return-value]


@dataclass
class Look:
    """Everything that decides how one face looks, sampled by `sample_look`.

    Positions and sizes are in face units (see `simulator_parts`): x from the face's centre line,
    y down from the eye line, one unit being half the face width at the cheekbones.
    """

    gender: str
    age_group: str
    age: int
    child: float  # 1 for a small child, 0 from late teens on: drives proportions
    skin: Color
    lip: Color
    face_shape: str
    cheek_w: float
    temple_w: float
    jaw_w: float
    jaw_y: float
    chin_w: float
    chin_y: float
    skull_top: float
    eye_shape: str
    eye_x: float
    eye_rx: float
    eye_ry: float
    eye_tilt: float
    iris: Color
    lashes: float
    brow_y: float
    brow_w: float
    brow_arch: float
    brow_color: Color
    nose_y: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_top: float
    lip_bottom: float
    smile: float
    hair_style: str
    hair: Color
    hair_volume: float
    hairline: float
    hair_length: float
    part: float
    facial_hair: str
    beard_color: Color
    glasses: str
    glasses_color: Color
    ear_size: float
    neck_w: float
    clothing: Color
    neckline: str
    wrinkles: float
    shave: float  # the grey-blue shadow of shaved stubble, 0 for none
    blush: float
    earrings: bool
    freckles: bool


# fmt: off
# Skin tones as they photograph, light to dark (after the Monk scale); sampled by interpolating.
_SKIN_SCALE = np.array([
    (242, 212, 192), (232, 194, 166), (222, 178, 146), (204, 158, 122), (184, 134, 98),
    (158, 108, 76), (130, 86, 60), (108, 72, 52), (90, 60, 44), (76, 52, 40),
], dtype=float)
_HAIR_COLORS: dict[str, Color] = {
    "black": (28, 22, 20), "dark_brown": (58, 38, 27), "brown": (96, 62, 38),
    "light_brown": (140, 102, 64), "blonde": (196, 160, 98), "platinum": (222, 205, 165),
    "auburn": (118, 52, 28), "red": (160, 72, 38),
}
_EYE_COLORS: dict[str, Color] = {
    "dark_brown": (58, 34, 20), "brown": (105, 62, 30), "amber": (150, 104, 42),
    "hazel": (118, 100, 52), "green": (82, 118, 72), "blue": (74, 116, 170),
    "grey": (122, 134, 148),
}
_FACE_SHAPES: dict[str, tuple[float, ...]] = {
    # cheek_w, temple_w, jaw_w, jaw_y, chin_w, chin_y
    "oval": (1.0, 0.96, 0.80, 0.95, 0.30, 1.36),
    "round": (1.03, 0.98, 0.90, 0.85, 0.40, 1.22),
    "square": (1.0, 0.98, 0.95, 1.02, 0.45, 1.30),
    "long": (0.96, 0.94, 0.82, 1.10, 0.32, 1.50),
    "heart": (1.0, 1.0, 0.72, 0.95, 0.20, 1.34),
    "diamond": (1.03, 0.88, 0.74, 0.95, 0.24, 1.38),
}
BACKGROUNDS: tuple[Color, ...] = (
    (200, 200, 200), (235, 235, 230), (120, 125, 130), (60, 64, 70), (215, 200, 175),
    (170, 195, 215), (90, 120, 160), (70, 120, 115), (170, 190, 160), (225, 190, 190),
    (190, 180, 210), (150, 110, 85), (240, 225, 200), (40, 40, 45),
)
_CLOTHES: tuple[Color, ...] = (
    (30, 40, 70), (120, 120, 125), (235, 235, 235), (25, 25, 28), (110, 30, 40), (85, 95, 50),
    (30, 110, 115), (200, 160, 50), (210, 130, 160), (140, 180, 220), (180, 60, 40),
    (90, 60, 120),
)
# Relative weights of hair styles per bucket: long hair mostly for girls and women, receding
# and bald heads for older men.
_HAIR_STYLES: dict[tuple[str, str], dict[str, float]] = {
    ("female", "child"): {"long": 3, "ponytail": 1.5, "pigtails": 1.5, "bob": 2, "bangs": 1,
                          "curly_long": 1},
    ("female", "teen"): {"long": 4, "ponytail": 1.5, "bob": 1, "bangs": 1, "curly_long": 1,
                         "bun": 0.5, "pixie": 0.5},
    ("female", "young_adult"): {"long": 3.5, "bob": 1.8, "ponytail": 1, "bun": 0.8,
                                "curly_long": 1, "pixie": 0.7, "bangs": 0.8, "afro": 0.4},
    ("female", "adult"): {"long": 3, "bob": 2.5, "ponytail": 0.8, "bun": 0.8, "curly_long": 1,
                          "pixie": 1.2, "bangs": 0.7},
    ("female", "senior"): {"pixie": 3, "bob": 3, "curly": 1.5, "bun": 1, "long": 1},
    ("male", "child"): {"short": 5, "messy": 2, "buzz": 1.5, "curly": 1.5},
    ("male", "teen"): {"short": 3.5, "messy": 2.5, "side_part": 1.5, "buzz": 1, "curly": 1,
                       "long": 0.5},
    ("male", "young_adult"): {"short": 3, "side_part": 2, "buzz": 1.5, "messy": 1, "curly": 1,
                              "afro": 0.3, "long": 0.4, "receding": 0.5, "bald": 0.3},
    ("male", "adult"): {"short": 3, "side_part": 2, "buzz": 1.2, "receding": 1.8, "bald": 1,
                        "curly": 0.5, "long": 0.3},
    ("male", "senior"): {"receding": 3, "bald": 3, "short": 2, "side_part": 1.5, "buzz": 0.5},
}
# Men only, from the late teens on (fuzz needs 16+).
_FACIAL_HAIR: dict[str, dict[str, float]] = {
    "child": {"none": 1},
    "teen": {"none": 6, "fuzz": 3, "stubble": 1},
    "young_adult": {"none": 3.5, "stubble": 3, "beard": 1.5, "moustache": 0.5, "goatee": 1.5},
    "adult": {"none": 3.5, "stubble": 2, "beard": 2.5, "moustache": 1, "goatee": 1},
    "senior": {"none": 4.5, "beard": 2.5, "moustache": 2, "stubble": 1},
}
# fmt: on
# Close-set eyes read male but also old. Boys' eyes sit this much further apart (face units, at
# `child` 1) than the male cue alone puts them: 0.04 closer than girls' instead of 0.14. With the
# child's light (simulator.py) that reads male children 12 years old instead of 20.5, at a cost
# in gender agreement, 93 % to 84 % (benchmarks/face_age_probe.py, variant `no_apart`).
BOY_APART = 0.1
# How much higher a small child's skull reaches (face units); 0.55 rather than 0.35 reads girls
# a year younger and finds more of them (detection 91 -> 95 %, seeds 0-3, variant `no_cranium`).
CHILD_CRANIUM = 0.55
# fmt: off
_GLASSES_CHANCE = {"child": 0.08, "teen": 0.12, "young_adult": 0.15, "adult": 0.25, "senior": 0.45}
# fmt: on


def pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """One key of `weights`, chosen with probability proportional to its weight."""
    # Cumulative search instead of rng.choice, which costs more than the whole draw of a brow.
    names, cumulative = list(weights), np.cumsum(list(weights.values()))
    return names[int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))]


def hex_color(c: Color) -> str:
    """`#rrggbb` for an RGB colour."""
    return "#{:02x}{:02x}{:02x}".format(*c)


def jitter(rng: np.random.Generator, c: Color, amount: float) -> Color:
    """`c` with each channel scaled by a random factor around 1 (relative spread `amount`)."""
    varied = np.clip(np.array(c) * (1 + rng.normal(0, amount, 3)), 0, 255)
    return tuple(int(v) for v in varied)  # type: ignore[return-value]


def sample_look(bucket: Bucket, rng: np.random.Generator) -> tuple[Look, dict[str, Any]]:
    """Draw every trait of one face for `bucket`; returns the look and scene extras."""
    male, group = bucket.gender == "male", bucket.age_group
    lo, hi = AGE_RANGES[group]
    age = int(rng.integers(lo, hi + 1))
    child = float(np.clip((17 - age) / 11, 0, 1))
    sex = 1.0 if male else -1.0
    adult_sex = sex * (1 - child)  # gender differences in the face appear with puberty

    tone = float(rng.uniform(0, 9))
    i = int(tone)
    skin = tuple(_SKIN_SCALE[i] + (_SKIN_SCALE[min(i + 1, 9)] - _SKIN_SCALE[i]) * (tone - i))
    skin = jitter(rng, tuple(int(v) for v in skin), 0.025)  # type: ignore[arg-type]
    dark = tone / 9

    shape_w = {
        "oval": 3,
        "round": 1.5,
        "square": 1 + 2 * (sex > 0),
        "long": 1,
        "heart": 1 + (sex < 0),
        "diamond": 1,
    }
    if child > 0.5:
        shape_w = {"round": 4, "oval": 2, "heart": 1}
    face_shape = pick(rng, shape_w)
    cheek, temple, jaw_w, jaw_y, chin_w, chin_y = (
        v + rng.normal(0, 0.02) for v in _FACE_SHAPES[face_shape]
    )
    # A man's jaw and chin are wider and longer; the difference grows in through the teens.
    manly = (1 - child) if male else 0.0
    jaw_w += 0.06 * adult_sex + 0.07 * manly + 0.04 * (age > 60) + 0.08 * child
    chin_w += 0.06 * adult_sex + 0.07 * manly
    chin_y = chin_y + 0.04 * adult_sex + 0.04 * manly - 0.22 * child
    jaw_y -= 0.12 * child
    # What photo classifiers read as male most of all (benchmarks/face_cues.py): a longer lower
    # face and eyes set closer together; boys get it too, or they read as girls.
    chin_y += 0.15 * male
    jaw_y += 0.1 * male

    eye_shape = pick(
        rng,
        {
            "almond": 3,
            "round": 1.5 + 2 * child,
            "hooded": 1 + (age > 45),
            "monolid": 1,
            "downturned": 0.7,
        },
    )
    ratio = {"almond": 0.42, "round": 0.55, "hooded": 0.37, "monolid": 0.34, "downturned": 0.42}[
        eye_shape
    ]
    eye_rx = rng.normal(0.18, 0.012) + 0.06 * child
    eye_ry = eye_rx * (ratio + 0.1 * child) * (0.85 if age > 60 else 1.0) * (1 - 0.12 * manly)
    eye_weights = {
        "dark_brown": 1 + 6 * dark,
        "brown": 2 + 2 * dark,
        "amber": 0.3,
        "hazel": 1 - 0.8 * dark,
    }
    eye_weights |= {
        "green": 0.8 * (1 - dark) ** 2,
        "blue": 2 * (1 - dark) ** 3,
        "grey": 0.5 * (1 - dark) ** 3,
    }
    eye_color = pick(rng, eye_weights)

    hair_w = {"black": 1 + 8 * dark, "dark_brown": 3 + dark, "brown": 3 * (1 - dark) + 0.3}
    hair_w |= {"light_brown": 2 * (1 - dark) ** 2, "blonde": (1.5 + 2 * child) * (1 - dark) ** 3}
    hair_w |= {
        "platinum": 0.3 * (1 - dark) ** 3,
        "auburn": 0.6 * (1 - dark) ** 2,
        "red": 0.5 * (1 - dark) ** 3,
    }
    hair_name = pick(rng, hair_w)
    grey = float(np.clip((age - 40) / 32 + rng.normal(0, 0.12), 0, 1))
    if age >= 60:
        grey = max(grey, 0.55 + 0.3 * rng.random())
    natural = jitter(rng, _HAIR_COLORS[hair_name], 0.06)
    hair = mix(natural, (232, 230, 225) if grey > 0.85 else (168, 166, 163), grey)
    style = pick(
        rng,
        _HAIR_STYLES[(bucket.gender, group)] | ({"afro": 0.8, "curly": 0.8} if dark > 0.6 else {}),
    )
    volume = {
        "buzz": 0.02,
        "afro": 0.45,
        "curly": 0.24,
        "bun": 0.06,
        "ponytail": 0.06,
        "pigtails": 0.06,
    }
    hair_volume = volume.get(style, 0.12) + rng.uniform(0, 0.07)
    hairline = -0.86 + rng.normal(0, 0.04) + 0.06 * child - (0.12 if style == "receding" else 0.0)

    facial = pick(rng, _FACIAL_HAIR[group]) if male else "none"
    if facial == "fuzz" and age < 16:
        facial = "none"
    glasses = (
        pick(rng, {"thin": 2, "thick": 2, "round": 1})
        if rng.random() < _GLASSES_CHANCE[group]
        else "none"
    )

    lip_target = (175, 60, 75) if dark < 0.5 else (120, 45, 50)
    lip = mix(skin, lip_target, 0.12 if male else 0.42 - 0.1 * child)
    if not male and child < 0.3 and rng.random() < 0.4:
        lip = mix(
            lip,
            [(170, 30, 45), (190, 80, 100), (120, 40, 60), (175, 110, 100)][int(rng.integers(4))],
            0.6,
        )
    if age > 60:
        lip = mix(lip, skin, 0.35)
    lip_scale = 0.6 if age > 60 else 1.0
    # Faint lines from the twenties (a forehead line, a shallow fold): the only cue that moved
    # the classifier's age for women in their twenties above teens' (benchmarks/face_cues.py).
    faint = min(0.2, 0.08 + 0.12 * (age - 20) / 9) if age >= 20 else 0.0
    wrinkles = float(np.clip(max((age - 30) / 42 + rng.normal(0, 0.06), faint), 0, 1))
    nose_y = rng.normal(0.56, 0.03) + 0.03 * adult_sex - 0.14 * child
    brow_gap = 0.16 - 0.07 * (adult_sex > 0) + 0.02 * child
    # Boys read as girls unless their brows are heavier and lower, their eyes closer still and
    # narrower (benchmarks/face_cues.py).
    boy = child * male
    # Men's eyes narrow with age more than anything else the classifier reads as old in a male
    # face (benchmarks/face_cues.py): from 45, to 0.88 as wide and 0.75 as tall by 65.
    old_man = float(np.clip((age - 45) / 20, 0, 1)) * male

    look = Look(
        gender=bucket.gender,
        age_group=group,
        age=age,
        child=child,
        skin=skin,
        lip=lip,
        face_shape=face_shape,
        cheek_w=cheek + 0.03 * child,
        temple_w=temple + 0.06 * child,
        jaw_w=jaw_w,
        jaw_y=jaw_y,
        chin_w=chin_w,
        chin_y=chin_y,
        skull_top=-1.3 + rng.normal(0, 0.03) - CHILD_CRANIUM * child,
        eye_shape=eye_shape,
        eye_x=rng.normal(0.43, 0.02)
        + 0.03 * child
        - (0.08 + 0.06 * child) * male
        + BOY_APART * boy,
        eye_rx=eye_rx * (1 - 0.12 * old_man),
        eye_ry=eye_ry * (1 - 0.15 * boy) * (1 - 0.25 * old_man),  # boys' narrower too
        eye_tilt=rng.normal(0.03, 0.04) + 0.05 * (eye_shape == "monolid"),
        iris=jitter(rng, _EYE_COLORS[eye_color], 0.08),
        lashes=float(rng.uniform(0.6, 1.0) if not male else rng.uniform(0.0, 0.15))
        * (1 - 0.5 * child),
        brow_y=-(eye_ry + brow_gap) + boy * 0.05,
        brow_w=(0.1 if male else 0.05)
        * rng.uniform(0.8, 1.2)
        * (1 - 0.35 * child)
        * (1 + 0.6 * boy),
        brow_arch=rng.uniform(0.06, 0.1) if not male else rng.uniform(0.015, 0.045),
        brow_color=mix(scale(natural, 0.75), hair, 0.35),  # brows grey later than hair
        nose_y=nose_y,
        nose_w=(rng.normal(0.16, 0.015) + 0.025 * adult_sex - 0.04 * child + 0.03 * dark)
        * (1 + 0.25 * manly),
        mouth_y=nose_y + rng.normal(0.3, 0.02) - 0.05 * child,
        mouth_w=rng.normal(0.32, 0.025) - 0.07 * child + 0.02 * dark,
        lip_top=(0.07 if not male else 0.042) * lip_scale * rng.uniform(0.85, 1.2) + 0.01 * dark,
        lip_bottom=(0.085 if not male else 0.052) * lip_scale * rng.uniform(0.85, 1.2)
        + 0.015 * dark,
        smile=float(np.clip(rng.normal(0.02, 0.02), -0.01, 0.06)),
        hair_style=style,
        hair=hair,
        hair_volume=hair_volume,
        hairline=hairline,
        hair_length=rng.uniform(2.2, 3.4) if not male else rng.uniform(1.4, 1.9),
        part=rng.uniform(-1, 1),
        facial_hair=facial,
        beard_color=mix(scale(natural, 0.85), hair, 0.8),
        glasses=glasses,
        glasses_color=[(20, 20, 20), (90, 55, 35), (190, 160, 90), (170, 170, 175)][
            int(rng.integers(4))
        ],
        ear_size=rng.uniform(0.9, 1.05) + 0.1 * (age > 60),
        neck_w=(0.5 if male else 0.42) - 0.06 * child,
        clothing=jitter(rng, _CLOTHES[int(rng.integers(len(_CLOTHES)))], 0.08),
        neckline=pick(
            rng,
            {"crew": 3, "v": 2, "collar": 3}
            if male
            else {"crew": 3, "v": 2, "scoop": 3, "collar": 1},
        ),
        wrinkles=wrinkles,
        shave=float(rng.uniform(0.05, 0.14)) if male and age >= 17 and facial == "none" else 0.0,
        blush=(0.12 * rng.random() + 0.1 * child) * (not male),
        earrings=(not male) and age > 12 and rng.random() < 0.35,
        freckles=dark < 0.3 and rng.random() < 0.12,
    )
    extras = {
        "hair_color_name": "white" if grey > 0.85 else ("grey" if grey > 0.5 else hair_name),
        "grey_hair": round(grey, 3),
        "eye_color": eye_color,
        "skin_tone_index": round(tone + 1, 2),
    }
    return look, extras
