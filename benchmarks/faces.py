"""Face benchmarks: simulator and classifier throughput, end-to-end refill through Dagster,
and Dagster's overhead per run. Prints a table: `make bench` or `python benchmarks/faces.py`.

Targets on a 2-core machine: simulator >= 100 faces/s at 256 px, end-to-end refill >= 20
faces/s, per-run overhead <= 2 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from synth_pipelines.core.cpus import cpu_description


def _isolated_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="synth_bench_"))
    os.environ["SYNTH_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


def bench_simulator(n: int, size: int) -> float:
    from synth_pipelines.core.faces.buckets import ALL_BUCKETS
    from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator

    simulator = ProceduralFaceSimulator(size=size)
    simulator.generate(ALL_BUCKETS[0], 2, 0)  # warm caches
    per_bucket = max(1, n // len(ALL_BUCKETS))
    started = time.perf_counter()
    made = sum(len(simulator.generate(b, per_bucket, 1)) for b in ALL_BUCKETS)
    return made / (time.perf_counter() - started)


def bench_classifier(n: int, size: int, min_long_side: int) -> tuple[float, float]:
    from synth_pipelines.core.faces.buckets import ALL_BUCKETS
    from synth_pipelines.core.faces.classifiers.age_and_gender import AgeAndGenderClassifier
    from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator

    simulator = ProceduralFaceSimulator(size=size)
    images = [
        face.image
        for bucket in ALL_BUCKETS
        for face in simulator.generate(bucket, max(1, n // len(ALL_BUCKETS)), 2)
    ]
    classifier = AgeAndGenderClassifier(min_long_side=min_long_side)
    classifier.classify(images[:1])  # model load is not throughput
    started = time.perf_counter()
    readings = classifier.classify(images)
    rate = len(images) / (time.perf_counter() - started)
    return rate, sum(r.detected for r in readings) / len(readings)


def bench_refill(count: int, runs_for_overhead: int) -> dict[str, float]:
    """One bucket of `count` through a real Dagster run, then empty runs for overhead."""
    import dagster as dg

    from synth_pipelines.core.faces.buckets import Bucket
    from synth_pipelines.definitions import build_definitions
    from synth_pipelines.lines.faces.sensors import REFILL_JOB, refill_run_config
    from synth_pipelines.partitions import partition_for_bucket
    from synth_pipelines.settings import Settings

    _isolated_home()
    settings = Settings.from_env()
    job = build_definitions(settings).resolve_job_def(REFILL_JOB)
    partition = str(partition_for_bucket(Bucket("female", "adult")))
    results: dict[str, float] = {}
    with dg.DagsterInstance.get() as instance:
        # Warm the process (imports, model load, schema) the way a long-lived worker is warm.
        job.execute_in_process(
            partition_key=str(partition_for_bucket(Bucket("male", "adult"))),
            run_config=refill_run_config(1),
            instance=instance,
        )
        started = time.perf_counter()
        result = job.execute_in_process(
            partition_key=partition, run_config=refill_run_config(count), instance=instance
        )
        wall = time.perf_counter() - started
        (event,) = result.get_asset_materialization_events()
        metadata = event.event_specific_data.materialization.metadata
        added = metadata["added"].value
        inside = metadata["seconds"].value
        results.update(
            refill_added=added,
            refill_wall_s=wall,
            refill_faces_per_s=added / wall,
            refill_asset_s=inside,
            refill_overhead_s=wall - inside,
            refill_overhead_share=(wall - inside) / wall,
            acceptance=metadata["acceptance_rate"].value,
        )
        overheads = []
        for _ in range(runs_for_overhead):
            started = time.perf_counter()
            result = job.execute_in_process(
                partition_key=partition, run_config=refill_run_config(0), instance=instance
            )
            wall = time.perf_counter() - started
            (event,) = result.get_asset_materialization_events()
            inside = event.event_specific_data.materialization.metadata["seconds"].value
            overheads.append(wall - inside)
        results["empty_run_overhead_s"] = sorted(overheads)[len(overheads) // 2]
    return results


def bench_launched_run(count: int) -> dict[str, float]:
    """A run as a run launcher starts it: a new process (`dagster job execute`), cold imports,
    model load and all; overhead = the process's wall time minus the time inside the asset."""
    import json
    import subprocess
    import sys

    import dagster as dg

    from synth_pipelines.core.faces.buckets import Bucket
    from synth_pipelines.lines.faces.sensors import REFILL_JOB, refill_run_config
    from synth_pipelines.partitions import partition_for_bucket

    home = _isolated_home()
    config = home / "run_config.json"
    config.write_text(json.dumps(refill_run_config(count)))
    partition = str(partition_for_bucket(Bucket("male", "young_adult")))
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "job",
        "execute",
        "-m",
        "synth_pipelines.definitions",
        "-j",
        REFILL_JOB,
        "-c",
        str(config),
        "--tags",
        json.dumps({"dagster/partition": partition}),
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=Path(__file__).parent.parent)
    wall = time.perf_counter() - started
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("face_inventory"))
        metadata = event.asset_materialization.metadata
    added, inside = metadata["added"].value, metadata["seconds"].value
    return {
        "added": added,
        "wall_s": wall,
        "faces_per_s": added / wall,
        "overhead_s": wall - inside,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=500, help="faces for the throughput rows")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--refill", type=int, default=100, help="faces in the refill run")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    rows: list[tuple[str, str, str]] = []
    sim = bench_simulator(args.faces, args.size)
    rows.append((f"simulator faces/s @ {args.size}px", f"{sim:.1f}", ">= 100"))
    for side in (256, 512):
        rate, detected = bench_classifier(min(args.faces, 200), args.size, side)
        rows.append(
            (f"classifier faces/s (detect at {side}px)", f"{rate:.1f}", f"detected {detected:.0%}")
        )
    refill = bench_refill(args.refill, runs_for_overhead=5)
    rows += [
        (
            f"end-to-end refill of {args.refill} (1 bucket, Dagster run)",
            f"{refill['refill_faces_per_s']:.1f} faces/s",
            ">= 20",
        ),
        (
            "  wall / inside the asset",
            f"{refill['refill_wall_s']:.2f} s / {refill['refill_asset_s']:.2f} s",
            f"acceptance {refill['acceptance']:.0%}",
        ),
        (
            "Dagster overhead per run (refill run)",
            f"{refill['refill_overhead_s']:.2f} s ({refill['refill_overhead_share']:.0%})",
            "<= 2 s",
        ),
        (
            "Dagster overhead per run (empty run, median of 5)",
            f"{refill['empty_run_overhead_s']:.2f} s",
            "<= 2 s",
        ),
    ]
    launched = bench_launched_run(args.refill)
    rows += [
        (
            f"launched refill of {args.refill} (new process, cold)",
            f"{launched['faces_per_s']:.1f} faces/s",
            f"wall {launched['wall_s']:.2f} s incl. interpreter start",
        ),
        (
            "Dagster overhead per run (launched: start, imports, load)",
            f"{launched['overhead_s']:.2f} s",
            "<= 2 s",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(
        f"# faces benchmark  {time.strftime('%Y-%m-%d')}  {platform.node()}  "
        f"{cpu_description()}  python {platform.python_version()}"
    )
    print(f"{'measure':<{width}}  {'value':>22}  target/notes")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>22}  {note}")


if __name__ == "__main__":
    main()
