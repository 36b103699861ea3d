"""Image set export benchmark: MB/s per format to the local object store, and memory flatness.
Prints two tables: `python benchmarks/imagesets_export.py [--images 300 --size 512]`.

Throughput: `--images` JPEGs (quality 90, `--size` px square, cut from scikit-image's sample
photos at shifting crops so that no two are alike) exported with `export_set` to a fresh
`LocalObjectStore` in each format; MB/s is the images' encoded bytes over the wall time, the
median of `--repeats` runs, with the formats interleaved so that a burst of load from other
processes hits them all. Two rows per format: images with no metadata (written as stored) and
images that all carry EXIF with GPS (stripped on the way). `CPU MB/s` divides by this
process's CPU time instead: on a shared machine it shows the export's own cost, which wall
time mixes with waiting for the CPU and the disk. `(floor)` is one `put_bytes` per image and
nothing else, the ceiling of the formats that write one object per image (jsonl,
imagefolder, coco). `--root /dev/shm` takes the disk out. Target: >= 100 MB/s.

Memory: each format exported with 500 and with 3,000 images (a pool of 40 distinct JPEGs
cycled under distinct keys, generated lazily, so the source holds nothing), each in its own
process: the tracemalloc peak of Python allocations during the export, Arrow's memory pool
peak (Parquet buffers live there, outside tracemalloc) and the process's peak RSS. Flat means
the 3,000-image figures are close to the 500-image ones.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from synth_pipelines.core.cpus import cpu_description, interpreter_speed
from synth_pipelines.core.imagesets.export import FORMATS, export_set
from synth_pipelines.core.imagesets.records import ImageRecord
from synth_pipelines.core.storage.object_store import LocalObjectStore

MEMORY_SIZES = (500, 3000)
POOL = 40


def _sources() -> list[Image.Image]:
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.retina()]
    return [Image.fromarray(p).convert("RGB") for p in photos]


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (52.0, 31.0, 12.0), "E", (13.0, 24.0, 36.0)
    return exif


def make_jpegs(count: int, size: int, with_exif: bool) -> list[bytes]:
    """`count` distinct `size`-px JPEGs: crops of the sample photos at shifting offsets."""
    sources, exif, out = _sources(), _exif(), []
    for i in range(count):
        photo = sources[i % len(sources)]
        side = min(photo.size) * 3 // 4
        step = i // len(sources)
        x = step * 7 % (photo.size[0] - side + 1)
        y = step * 5 % (photo.size[1] - side + 1)
        crop = photo.crop((x, y, x + side, y + side)).resize(
            (size, size), Image.Resampling.BILINEAR
        )
        buffer = io.BytesIO()
        crop.save(buffer, format="JPEG", quality=90, **({"exif": exif} if with_exif else {}))
        out.append(buffer.getvalue())
    return out


def records(jpegs: list[bytes], count: int) -> Iterator[ImageRecord]:
    for i in range(count):
        label = ("cat", "dog", "bird")[i % 3]
        boxes = ((10, 10, 100, 120),) if i % 2 else ()
        yield ImageRecord(f"{label}/{i:06d}.jpg", jpegs[i % len(jpegs)], label,
                          {"seed": i, "backend": "bench"}, boxes)  # fmt: skip


def throughput(args: argparse.Namespace) -> None:
    where = args.root or tempfile.gettempdir()
    print(f"throughput: {args.images} JPEGs of {args.size}px to a local store in {where}, "
          f"median of {args.repeats}")  # fmt: skip
    print(f"{'format':<12} {'images':<9} {'MB in':>6} {'MB out':>7} {'seconds':>8} "
          f"{'MB/s':>6} {'CPU MB/s':>9}")  # fmt: skip
    for with_exif in (False, True):
        jpegs = make_jpegs(args.images, args.size, with_exif)
        megabytes = sum(map(len, jpegs)) / 1e6
        kind = "EXIF+GPS" if with_exif else "plain"
        for fmt in FORMATS:  # warm-up: lazy imports (pyarrow.parquet's take 0.5 s) are not timed
            _export_once(jpegs[:10], fmt, args.root)
        runs: dict[str, list[tuple[float, float, int]]] = {}
        for _ in range(args.repeats):  # formats interleaved, so a burst of load hits them all
            if not with_exif:
                runs.setdefault("(floor)", []).append(_store_floor(jpegs, args.root))
            for fmt in FORMATS:
                runs.setdefault(fmt, []).append(_export_once(jpegs, fmt, args.root))
        for name, measured in runs.items():
            wall = statistics.median(m[0] for m in measured)
            cpu = statistics.median(m[1] for m in measured)
            note = "  (one put_bytes an image, nothing else)" if name == "(floor)" else ""
            print(f"{name:<12} {kind:<9} {megabytes:6.1f} {measured[0][2] / 1e6:7.1f} "
                  f"{wall:8.3f} {megabytes / wall:6.0f} {megabytes / cpu:9.0f}{note}")  # fmt: skip


def _export_once(jpegs: list[bytes], fmt: str, where: str | None) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, bytes written) of one export."""
    root = Path(tempfile.mkdtemp(prefix="synth_bench_export_", dir=where))
    try:
        store = LocalObjectStore(root)
        wall, cpu = time.perf_counter(), time.process_time()
        result = export_set(records(jpegs, len(jpegs)), store, "out", fmt)
        return time.perf_counter() - wall, time.process_time() - cpu, result.bytes
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _store_floor(jpegs: list[bytes], where: str | None) -> tuple[float, float, int]:
    """One put_bytes per image into a fresh local store, and nothing else: the floor of the
    formats that write a file per image (jsonl, imagefolder, coco). As _export_once."""
    root = Path(tempfile.mkdtemp(prefix="synth_bench_export_floor_", dir=where))
    try:
        store = LocalObjectStore(root)
        wall, cpu = time.perf_counter(), time.process_time()
        for i, data in enumerate(jpegs):
            store.put_bytes(f"out/images/{i % 3}/{i:06d}.jpg", data)
        return time.perf_counter() - wall, time.process_time() - cpu, sum(map(len, jpegs))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process; False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def memory_one(fmt: str, count: int, size: int) -> dict:
    """One export of `count` images in `fmt`, measured: run in its own process."""
    import pyarrow as pa

    jpegs = make_jpegs(POOL, size, with_exif=True)
    root = Path(tempfile.mkdtemp(prefix="synth_bench_export_mem_"))
    _reset_peak_rss()  # so the peak below is the export's, not the imports'
    rss_before = _peak_rss_mb()
    try:
        tracemalloc.start()
        tracemalloc.reset_peak()
        started = time.perf_counter()
        result = export_set(records(jpegs, count), LocalObjectStore(root), "out", fmt)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "images": result.images,
        "traced_peak_mb": peak / 1e6,
        "arrow_peak_mb": pa.default_memory_pool().max_memory() / 1e6,
        "rss_peak_mb": _peak_rss_mb(),
        "rss_before_mb": rss_before,
        "written_mb": result.bytes / 1e6,
        "seconds": seconds,
    }


def memory(args: argparse.Namespace) -> None:
    print(f"\nmemory: {' vs '.join(f'{n:,}' for n in MEMORY_SIZES)} images of {args.size}px "
          "(EXIF stripped), one process each")  # fmt: skip
    print(f"{'format':<12} {'images':>6} {'MB out':>7} {'traced peak MB':>15} "
          f"{'arrow peak MB':>14} {'RSS start MB':>12} {'RSS peak MB':>12}")  # fmt: skip
    for fmt in FORMATS:
        for count in MEMORY_SIZES:
            command = [sys.executable, __file__, "--memory-one", fmt, str(count),
                       "--size", str(args.size)]  # fmt: skip
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            m = json.loads(output.strip().splitlines()[-1])
            print(f"{fmt:<12} {m['images']:>6} {m['written_mb']:7.0f} {m['traced_peak_mb']:15.1f} "
                  f"{m['arrow_peak_mb']:14.1f} {m['rss_before_mb']:12.0f} "
                  f"{m['rss_peak_mb']:12.0f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="images for the MB/s runs")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--repeats", type=int, default=3, help="runs per format (median)")
    parser.add_argument("--skip-memory", action="store_true", help="only the MB/s table")
    parser.add_argument("--root", help="directory for the stores (default: the temp dir)")
    parser.add_argument(
        "--memory-one", nargs=2, metavar=("FORMAT", "COUNT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.memory_one:
        fmt, count = args.memory_one
        print(json.dumps(memory_one(fmt, int(count), args.size)))
        return
    print(f"# imagesets export  {cpu_description()}  python {platform.python_version()}  "
          f"{interpreter_speed()}")  # fmt: skip
    throughput(args)
    if not args.skip_memory:
        memory(args)


if __name__ == "__main__":
    main()
