"""Identity scan throughput: `embed_many` (dlib detector + landmarks + ResNet descriptor) on
simulator faces stored as PNG, with 1 and 2 worker processes. Prints a markdown table:
`python benchmarks/identity_scan.py [--faces 200]`.

Target on a 2-core machine: >= 20 faces/s with 2 workers at 256 px. The 2-worker time includes
starting the worker processes (imports and model load, ~2-3 s); the 1-worker time runs in this
process with the models already loaded.
"""

from __future__ import annotations

import argparse
import os
import platform
import time


def make_faces(n: int, size: int) -> list[bytes]:
    """`n` distinct simulator faces across all buckets, PNG-encoded as the inventory stores them."""
    from synth_pipelines.core.faces.buckets import ALL_BUCKETS
    from synth_pipelines.core.faces.candidates import encode_png
    from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator

    simulator = ProceduralFaceSimulator(size=size)
    per_bucket = -(-n // len(ALL_BUCKETS))
    faces = [f for b in ALL_BUCKETS for f in simulator.generate(b, per_bucket, seed=5)]
    return [encode_png(face.image) for face in faces[:n]]


def bench(datas: list[bytes], workers: int) -> tuple[float, int]:
    """Seconds for one `embed_many` call over `datas`, and how many got no embedding."""
    from synth_pipelines.core.privacy.identity import FaceEmbedder, embed_many

    embedder = FaceEmbedder()
    embed_many(datas[:2], workers=1, embedder=embedder)  # warm this process's models
    started = time.perf_counter()
    vectors = embed_many(datas, workers=workers, embedder=embedder)
    return time.perf_counter() - started, sum(v is None for v in vectors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=200, help="simulator faces to embed")
    parser.add_argument("--size", type=int, default=256, help="face size in pixels")
    args = parser.parse_args()

    datas = make_faces(args.faces, args.size)
    load = os.getloadavg()[0]
    rows = []
    for workers in (1, 2):
        seconds, missing = bench(datas, workers)
        rows.append((len(datas), workers, seconds, len(datas) / seconds, missing))
    print(
        f"# identity scan benchmark  {time.strftime('%Y-%m-%d')}  {platform.node()}  "
        f"{os.cpu_count()} cores  python {platform.python_version()}  "
        f"{args.size}px  load avg at start {load:.2f}"
    )
    print("| faces | workers | seconds | faces/s | without embedding |")
    print("|---:|---:|---:|---:|---:|")
    for faces, workers, seconds, rate, missing in rows:
        print(f"| {faces} | {workers} | {seconds:.2f} | {rate:.1f} | {missing} |")


if __name__ == "__main__":
    main()
