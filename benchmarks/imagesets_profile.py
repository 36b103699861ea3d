"""Image set profiling speed and memory: images/s profiling 512-px JPEGs (crops of scikit-image's
sample photos at varied brightness), without and with face detection, one thread and the
default thread count; and the peak RSS of profiling 500 vs 5,000 images, each size in a fresh
process (memory should be flat in the set's size).

    python benchmarks/imagesets_profile.py               # prints a table
    python benchmarks/imagesets_profile.py --images 100 --rss 200 2000   # quicker

OCR is off throughout (tesseract costs ~0.3 s an image on its own). The header names the CPU
count and the load average: on a shared machine the rates move with it.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "camera", "cat", "immunohistochemistry",
           "hubble_deep_field", "retina", "colorwheel", "page", "motorcycle_left")  # fmt: skip


def _sources() -> list:
    import numpy as np
    from PIL import Image
    from skimage import data

    images = []
    for name in SAMPLES:
        loader = getattr(data, name, None)
        if loader is None:
            continue
        pixels = loader()
        if pixels.ndim == 3 and pixels.shape[2] == 4:
            pixels = pixels[..., :3]
        images.append(Image.fromarray(np.asarray(pixels, dtype=np.uint8)).convert("RGB"))
    return images


def photos(count: int, seed: int = 0) -> Iterator:
    """`count` ImageRecords of 512x512 JPEGs: random crops of the samples, resized, at a random
    brightness (0.5-1.4x) and JPEG quality (60-95). Made one at a time."""
    import numpy as np
    from PIL import Image, ImageEnhance

    from synth_pipelines.core.imagesets.records import ImageRecord

    rng = np.random.default_rng(seed)
    sources = _sources()
    for i in range(count):
        image = sources[i % len(sources)]
        side = int(min(image.size) * rng.uniform(0.5, 1.0))
        x = int(rng.integers(0, image.width - side + 1))
        y = int(rng.integers(0, image.height - side + 1))
        crop = image.crop((x, y, x + side, y + side)).resize((512, 512), Image.Resampling.BILINEAR)
        crop = ImageEnhance.Brightness(crop).enhance(float(rng.uniform(0.5, 1.4)))
        out = io.BytesIO()
        crop.save(out, format="JPEG", quality=int(rng.integers(60, 96)))
        yield ImageRecord(f"photos/{i:06d}.jpg", out.getvalue(), label=f"sample{i % len(sources)}")


def rate(records: list, faces: bool, workers: int | None) -> float:
    from synth_pipelines.core.imagesets.profile import profile_images

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        profile_images(records, Path(out), faces=faces, ocr=False, workers=workers)
        return len(records) / (time.perf_counter() - start)


def rss_child(count: int) -> None:
    """Profile `count` photos made on the fly, then print the peak RSS in MiB."""
    from synth_pipelines.core.imagesets.profile import profile_images

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        profile = profile_images(photos(count, seed=1), Path(out), ocr=False)
        seconds = time.perf_counter() - start
        assert profile.summary["counts"]["ok"] == count
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{peak:.1f} {seconds:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="photos for the rates")
    parser.add_argument("--rss", type=int, nargs=2, default=(500, 5000), metavar=("SMALL", "LARGE"))
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return
    from synth_pipelines.core.imagesets.profile import default_workers

    load = os.getloadavg()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, default workers "
        f"{default_workers()}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    records = list(photos(args.images))
    rate(records[:20], faces=True, workers=1)  # imports, dlib's detector, caches
    print(f"\n{'profiling ' + str(len(records)) + ' 512-px JPEGs':<44} {'images/s':>9}")
    for faces in (False, True):
        for workers in (1, None):
            name = f"faces {'on' if faces else 'off'}, {workers or default_workers()} worker(s)"
            print(f"{name:<44} {rate(records, faces, workers):>9.1f}", flush=True)
    print(f"\n{'peak RSS, fresh process':<30} {'MiB':>8} {'seconds':>8}")
    for count in args.rss:
        command = [sys.executable, __file__, "--rss-child", str(count)]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        peak, seconds = result.stdout.split()
        print(
            f"{str(count) + ' images':<30} {float(peak):>8.1f} {float(seconds):>8.1f}", flush=True
        )


if __name__ == "__main__":
    main()
