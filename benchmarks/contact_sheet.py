"""The README's contact sheet of simulator faces (issue 20 §2): one column per bucket (female
then male, child to senior), one row per batch seed, the first face of each batch, each tile
labelled with its bucket. Deterministic: the same seeds and sizes give the same PNG bytes.

    python benchmarks/contact_sheet.py [--out docs/faces_contact_sheet.png] [--seeds 0,1,2,3]
                                       [--thumb 96] [--size 256]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth_pipelines.core.faces.buckets import ALL_BUCKETS, Bucket
from synth_pipelines.core.faces.preview import contact_sheet
from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "faces_contact_sheet.png"


def _label(bucket: Bucket) -> str:
    """`F young adult` for female/young_adult: short enough for a 96-pixel tile."""
    return f"{bucket.gender[0].upper()} {bucket.age_group.replace('_', ' ')}"


def faces_sheet(seeds: list[int], thumb: int = 96, size: int = 256) -> Image.Image:
    """The sheet: a row per seed, a column per bucket, as a 256-colour palette image (small)."""
    simulator = ProceduralFaceSimulator(size=size)
    images, labels = [], []
    for seed in seeds:
        for bucket in ALL_BUCKETS:
            images.append(simulator.generate(bucket, 1, seed)[0].image)
            labels.append(_label(bucket))
    sheet = contact_sheet(images, columns=len(ALL_BUCKETS), thumb=thumb, labels=labels)
    return sheet.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    parser.add_argument("--seeds", default="0,1,2,3", help="batch seeds, one row each (0,1,2,3)")
    parser.add_argument("--thumb", type=int, default=96, help="tile size in pixels (96)")
    parser.add_argument("--size", type=int, default=256, help="face size before shrinking (256)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    sheet = faces_sheet(seeds, args.thumb, args.size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height}, {args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
