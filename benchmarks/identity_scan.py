"""Identity scan throughput: `embed_many` (dlib detector + landmarks + ResNet descriptor) on
simulator faces stored as PNG, with 1 and 2 worker processes. Prints a markdown table:
`python benchmarks/identity_scan.py [--faces 200]`.

Target on a 2-core machine: >= 20 faces/s with 2 workers at 256 px. The 2-worker time includes
starting the worker process (imports and model load, ~2-3 s of CPU); the 1-worker time runs in
this process with the models already loaded. CPU seconds (this process and its workers) show
the cost regardless of other load on the machine, which wall time does not.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

from synth_pipelines.core.cpus import cpu_description


def make_faces(n: int, size: int) -> list[bytes]:
    """`n` distinct simulator faces across all buckets, PNG-encoded as the inventory stores them."""
    from synth_pipelines.core.faces.buckets import ALL_BUCKETS
    from synth_pipelines.core.faces.candidates import encode_png
    from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator

    simulator = ProceduralFaceSimulator(size=size)
    per_bucket = -(-n // len(ALL_BUCKETS))
    faces = [f for b in ALL_BUCKETS for f in simulator.generate(b, per_bucket, seed=5)]
    return [encode_png(face.image) for face in faces[:n]]


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children: what the scan cost, whatever the
    machine's other load did to the wall time."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def bench(datas: list[bytes], workers: int) -> tuple[float, float, int]:
    """Wall and CPU seconds for one `embed_many` call over `datas`, and how many got no
    embedding."""
    from synth_pipelines.core.privacy.identity import FaceEmbedder, embed_many

    embedder = FaceEmbedder()
    embed_many(datas[:2], workers=1, embedder=embedder)  # warm this process's models
    started, cpu = time.perf_counter(), _cpu_seconds()
    vectors = embed_many(datas, workers=workers, embedder=embedder)
    wall = time.perf_counter() - started
    return wall, _cpu_seconds() - cpu, sum(v is None for v in vectors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=200, help="simulator faces to embed")
    parser.add_argument("--size", type=int, default=256, help="face size in pixels")
    args = parser.parse_args()

    datas = make_faces(args.faces, args.size)
    load = os.getloadavg()[0]
    rows = []
    for workers in (1, 2):
        seconds, cpu, missing = bench(datas, workers)
        rows.append((len(datas), workers, seconds, len(datas) / seconds, cpu, missing))
    print(
        f"# identity scan benchmark  {time.strftime('%Y-%m-%d')}  {platform.node()}  "
        f"{cpu_description()}  python {platform.python_version()}  "
        f"{args.size}px  load avg at start {load:.2f}"
    )
    print("| faces | workers | seconds | faces/s | CPU seconds | CPU ms/face | without embedding |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for faces, workers, seconds, rate, cpu, missing in rows:
        print(
            f"| {faces} | {workers} | {seconds:.2f} | {rate:.1f} | {cpu:.2f} | "
            f"{cpu / faces * 1000:.1f} | {missing} |"
        )


if __name__ == "__main__":
    main()
