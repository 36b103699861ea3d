"""Image-set validation benchmark: quality + fidelity + privacy (no OCR) of a synthetic set
against a real one, in synthetic images per second. Prints a markdown table.

    python benchmarks/imagesets_validate.py [--real 1000] [--synth 1000] [--size 64] [--dim 512]

Inputs, built before the clock starts: simulator faces at `--size` px as PNG records (real ones
from one seed range, synthetic ones from another, with 5 exact copies of real images planted in
the synthetic set), features tables measured from those images (brightness, contrast,
colourfulness, sharpness, noise, phash), and random but structured embeddings (a mixture of 16
Gaussians in `--dim` dimensions, L2-normalised; the planted copies carry their real image's
embedding), plus a holdout of as many real embeddings for the DCR share. Timed: `quality_report`
on the synthetic records (decoding every image), `fidelity_report` (8 features, prdc, KID) and
`privacy_report` (phash and embedding copies, nearest-real share, DCR). Target: >= 100 images/s.
"""

from __future__ import annotations

import argparse
import io
import time
from datetime import date

import imagehash
import numpy as np
import pandas as pd
from PIL import Image

from synth_pipelines.core.cpus import cpu_description
from synth_pipelines.core.faces.buckets import ALL_BUCKETS
from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator
from synth_pipelines.core.imagecheck.quality import laplacian_variance
from synth_pipelines.core.imagesets.records import ImageRecord
from synth_pipelines.core.imagesets.validate import (
    Thresholds,
    fidelity_report,
    privacy_report,
    quality_report,
)

COPIES = 5


def faces(n: int, size: int, seed: int, prefix: str) -> list[ImageRecord]:
    simulator = ProceduralFaceSimulator(size=size)
    records = []
    for i in range(n):
        bucket = ALL_BUCKETS[i % len(ALL_BUCKETS)]
        image = simulator.render(bucket, seed * 1_000_003 + i).image
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        records.append(ImageRecord(f"{prefix}/{i:05d}.png", buffer.getvalue()))
    return records


def features(records: list[ImageRecord]) -> pd.DataFrame:
    """The features-table columns the reports read, measured from the images."""
    rows = []
    for record in records:
        image = Image.open(io.BytesIO(record.data)).convert("RGB")
        rgb = np.asarray(image, np.float32)
        gray = np.asarray(image.convert("L"), np.float32)
        rg, yb = rgb[..., 0] - rgb[..., 1], 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
        smooth = (gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:]) / 4
        rows.append(
            {
                "key": record.key,
                "ok": True,
                "error": None,
                "width": image.width,
                "height": image.height,
                "aspect": image.width / image.height,
                "brightness": float(gray.mean()),
                "contrast": float(gray.std()),
                "colourfulness": float(
                    np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
                ),
                "sharpness": laplacian_variance(gray),
                "noise": float((gray[1:-1, 1:-1] - smooth).std()),
                "phash": str(imagehash.phash(image.convert("L"))),
                "faces": 1,
                "face_boxes": "[]",
            }
        )
    return pd.DataFrame(rows)


def embeddings(n: int, dim: int, seed: int) -> np.ndarray:
    centres = np.random.default_rng(7).normal(size=(16, dim))
    rng = np.random.default_rng(seed)
    points = centres[rng.integers(0, 16, n)] + rng.normal(0, 0.8, (n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def run(n_real: int, n_synth: int, size: int, dim: int) -> dict:
    real = faces(n_real, size, 1, "real")
    synth = faces(n_synth - COPIES, size, 2, "synth")
    synth += [ImageRecord(f"synth/copy-{i}.png", real[i * 7].data) for i in range(COPIES)]
    real_table, synth_table = features(real), features(synth)
    real_emb, synth_emb = embeddings(n_real, dim, 1), embeddings(n_synth, dim, 2)
    synth_emb[-COPIES:] = real_emb[[i * 7 for i in range(COPIES)]]
    holdout_emb = embeddings(n_real, dim, 3)

    times = {}
    started = time.perf_counter()
    quality = quality_report(synth)
    times["quality"] = time.perf_counter() - started
    started = time.perf_counter()
    fidelity = fidelity_report(real_table, synth_table, real_emb, synth_emb)
    times["fidelity"] = time.perf_counter() - started
    started = time.perf_counter()
    privacy = privacy_report(real_table, synth_table, real_emb, synth_emb, holdout_emb=holdout_emb)
    times["privacy"] = time.perf_counter() - started
    strict = privacy_report(
        real_table, synth_table, real_emb, synth_emb, thresholds=Thresholds(copy_requires_both=True)
    )
    return {"times": times, "reports": (quality, fidelity, privacy), "strict": strict}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=int, default=1000)
    parser.add_argument("--synth", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--dim", type=int, default=512)
    args = parser.parse_args()
    result = run(args.real, args.synth, args.size, args.dim)
    times, reports = result["times"], result["reports"]
    total = sum(times.values())

    print(f"# image-set validation benchmark, {date.today()}, {cpu_description()}\n")
    print(f"{args.real:,} real vs {args.synth:,} synthetic images, {args.size} px PNG, "
          f"{args.dim}-d embeddings\n")  # fmt: skip
    print("| stage | seconds | synthetic images/s |\n|---|---|---|")
    for stage, seconds in times.items():
        print(f"| {stage} | {seconds:.2f} | {args.synth / seconds:,.0f} |")
    print(f"| **all three** | {total:.2f} | **{args.synth / total:,.0f}** (target >= 100) |\n")
    for report in reports:
        print(f"- {report.summary()}")
    _, fidelity, privacy = reports
    strict = result["strict"]
    planted = sum(key.startswith("synth/copy-") for key in privacy.failing)
    by_phash = sum(
        any("phash" in r for r in privacy.reasons[k]) and not k.startswith("synth/copy-")
        for k in privacy.failing
    )
    print(f"\nprivacy: copies found {privacy.metrics['copies']}, {planted} of the {COPIES} "
          f"planted; other distinct faces within the phash limit: {by_phash}; "
          f"DCR share {privacy.metrics['dcr_share']:.3f}; fidelity precision "
          f"{fidelity.metrics['precision']:.3f}, recall {fidelity.metrics['recall']:.3f}, "
          f"KID {fidelity.metrics['kid']:.4f} +- {fidelity.metrics['kid_std']:.4f}")  # fmt: skip
    print(f"with copy_requires_both: copies found {strict.metrics['copies']} "
          f"({', '.join(strict.failing[:COPIES + 2])})")  # fmt: skip


if __name__ == "__main__":
    main()
