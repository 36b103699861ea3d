"""What sharding costs a tabular job on one machine: the 1M-row, 10-column job of
benchmarks/tabular.py made in one step, against the same job in N shards (each generated into a
Parquet file in a local object store, as `tabular_shard` steps do, one after another here) then
assembled (`tabular_assemble`: read back, dedup, write). Shards pay for on a cluster, where they
run at once on several workers; here the shards' sum is what one machine would spend.

`python benchmarks/tabular_shards.py` (`--rows`, `--shards 2 4`, `--repeat`).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

from synth_pipelines.core.cpus import cpu_description


def main() -> None:
    from tabular import SCHEMA  # benchmarks/tabular.py, beside this script

    from synth_pipelines.core.storage.object_store import LocalObjectStore
    from synth_pipelines.core.tabular.jobs import JobParams
    from synth_pipelines.core.tabular.runner import run_tabular_job
    from synth_pipelines.core.tabular.schema import TableSchema
    from synth_pipelines.core.tabular.shards import (
        delete_shards,
        generate_shard,
        plan_shards,
        shard_chunks,
    )
    from synth_pipelines.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    workers = Settings.from_env().tabular.workers
    schema = TableSchema.parse(SCHEMA)
    store = LocalObjectStore(Path(tempfile.mkdtemp(prefix="synth_bench_shards_")))
    params = JobParams(args.rows, 125_000, workers, 1.0, 1)

    def one_step(run: int) -> tuple[float, float, float]:
        started = time.perf_counter()
        run_tabular_job(schema, params, store=store, key_prefix=f"one/{run}")
        return time.perf_counter() - started, 0.0, 0.0

    def sharded(count: int, run: int) -> tuple[float, float, float]:
        plan = plan_shards("bench", f"run-{count}-{run}", params, count)
        started = time.perf_counter()
        for shard in plan:
            generate_shard(schema, params, shard, store)
        made = time.perf_counter()
        run_tabular_job(schema, params, store=store, key_prefix=f"sharded/{count}/{run}",
                        chunks=shard_chunks(store, plan))  # fmt: skip
        done = time.perf_counter()
        delete_shards(store, plan)
        return done - started, made - started, done - made

    rows = [("one step", [one_step(r) for r in range(args.repeat)])]
    for count in args.shards:
        rows.append((f"{count} shards", [sharded(count, r) for r in range(args.repeat)]))
    print(
        f"# tabular shards  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}  "
        f"{cpu_description()}  {args.rows:,} rows, {params.total_chunks} chunks, "
        f"{workers} processes, best of {args.repeat}"
    )
    print(f"{'mode':<10} {'total s':>8} {'median':>8} {'shards s':>9} {'assemble s':>11}")
    for name, runs in rows:
        best = min(runs)
        median = statistics.median(r[0] for r in runs)
        print(f"{name:<10} {best[0]:>8.2f} {median:>8.2f} {best[1]:>9.2f} {best[2]:>11.2f}")


if __name__ == "__main__":
    main()
