"""Scale benchmarks (issue 19). Prints a table per part: `python benchmarks/scale.py`.

Parts:
- `celery-overhead`: Celery per-step overhead against the in-process executor. The same refill
  runs (one step each, 1 face at 64 px) executed one after another, first with
  SYNTH_EXECUTOR=in_process, then with SYNTH_EXECUTOR=celery on one real worker (RabbitMQ
  broker, Redis backend at SYNTH_CELERY_BROKER_URL / SYNTH_CELERY_BACKEND_URL, their defaults
  on 127.0.0.1). Each executor's runs come from one process that has loaded the code location
  once, as a run worker would; the worker too is started (and warmed by one run) before timing.
  Reported: the median run (launch to end), the median step (STEP_START to STEP_SUCCESS), and
  for Celery the median wait from submitting the task to the step's start on the worker.
- `api-capacity`: the requests per second the API holds at p99 <= 200 ms, on loopback, bounded.
  `synth serve` (`--api-workers`, default 2: one per core) on a throwaway PostgreSQL database
  (and on SQLite), open-loop paced bursts of `--api-requests` requests over 32 keep-alive
  connections (benchmarks/api.py's client: latency counts from when a request was due, so a
  server falling behind shows as latency), at rising rates until p99 passes 200 ms or a 5xx
  appears; per endpoint (a status read, a new request), the highest rate that held.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PARTS = ("celery-overhead", "api-capacity")
RATES = (100, 200, 300, 400, 600, 800, 1000, 1300, 1600, 2000)
P99_LIMIT = 0.2


def _timed_runs(executor: str, runs: int) -> list[dict]:
    """`runs` refills of 1 face, one after another, on `executor`; the seconds of each."""
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    import synth_pipelines.definitions  # noqa: F401  (the code location, loaded once)
    from synth_pipelines.core.faces.buckets import ALL_BUCKETS
    from synth_pipelines.lines.faces.sensors import REFILL_JOB, refill_run_config
    from synth_pipelines.partitions import face_buckets, partition_for_bucket

    job = ReconstructableRepository.for_module(
        "synth_pipelines.definitions", "defs", working_directory=str(REPO)
    ).get_reconstructable_job(REFILL_JOB)
    results = []
    with dg.DagsterInstance.get() as instance:
        for i in range(runs + 1):  # the first warms the worker and the caches: not timed
            bucket = ALL_BUCKETS[i % len(ALL_BUCKETS)]
            tags = face_buckets.get_tags_for_partition_key(partition_for_bucket(bucket))
            started = time.perf_counter()
            result = dg.execute_job(
                job, instance=instance, run_config=refill_run_config(1), tags=tags
            )
            seconds = time.perf_counter() - started
            assert result.success, f"run {result.run_id} failed"
            events = {
                kind: [
                    r.event_log_entry
                    for r in instance.get_records_for_run(result.run_id, of_type=kind).records
                ]
                for kind in (
                    dg.DagsterEventType.STEP_START,
                    dg.DagsterEventType.STEP_SUCCESS,
                    dg.DagsterEventType.ENGINE_EVENT,
                )
            }
            (start,) = events[dg.DagsterEventType.STEP_START]
            (end,) = events[dg.DagsterEventType.STEP_SUCCESS]
            submitted = [
                e.timestamp
                for e in events[dg.DagsterEventType.ENGINE_EVENT]
                if "Submitting celery task" in (e.dagster_event.message or "")
            ]
            if i:
                results.append(
                    {
                        "run": seconds,
                        "step": end.timestamp - start.timestamp,
                        "queue": start.timestamp - submitted[0] if submitted else None,
                    }
                )
    return results


def _runs_in_subprocess(executor: str, runs: int, env: dict[str, str]) -> list[dict]:
    out = subprocess.run(
        [sys.executable, __file__, "_runs", executor, str(runs)],
        env={**env, "SYNTH_EXECUTOR": executor},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if out.returncode:
        raise SystemExit(f"{executor} runs failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def celery_overhead(runs: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="synth_bench_scale_"))
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SYNTH_")},
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "SYNTH_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "SYNTH_FACE_SIZE": "64",
        "SYNTH_LABEL_SOURCE": "generator",
        "SYNTH_REFILL_WORKERS": "1",
    }
    for name in ("SYNTH_CELERY_BROKER_URL", "SYNTH_CELERY_BACKEND_URL"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    os.environ.update(env)
    from synth_pipelines.core.storage.database import FactoryDatabase
    from synth_pipelines.execution import check_reachable, worker_command
    from synth_pipelines.settings import Settings

    settings = Settings.from_env()
    execution = settings.execution
    check_reachable(execution.celery_broker_url, execution.celery_backend_url, 5)
    FactoryDatabase(settings.database_url).upgrade()

    in_process = _runs_in_subprocess("in_process", runs, env)
    log = home / "worker.log"
    worker = subprocess.Popen(
        worker_command("default", "bench1"),
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while " ready." not in log.read_text():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        celery = _runs_in_subprocess("celery", runs, env)
    finally:
        worker.terminate()
        worker.wait(60)

    def median(rows: list[dict], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    base_run, base_step = median(in_process, "run"), median(in_process, "step")
    print(
        f"\nCelery per-step overhead against the in-process executor ({runs} timed refill runs "
        f"of 1 face at 64 px each, one step per run; 1 worker, --pool solo)"
    )
    print(f"host: {platform.node()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print("| executor | median run s | median step s | median queue wait s | run overhead s |")
    print("|---|---|---|---|---|")
    print(f"| in_process | {base_run:.2f} | {base_step:.2f} | - | - |")
    print(
        f"| celery | {median(celery, 'run'):.2f} | {median(celery, 'step'):.2f} | "
        f"{median(celery, 'queue'):.2f} | {median(celery, 'run') - base_run:+.2f} |"
    )


def api_capacity(requests: int, workers: int) -> None:
    import asyncio

    import numpy as np

    sys.path.insert(0, str(REPO / "benchmarks"))
    import api  # benchmarks/api.py: the paced client and the server it starts

    from tests.helpers import free_port, stop_process

    print(
        f"\nAPI capacity at p99 <= {P99_LIMIT * 1000:.0f} ms (synth serve --workers {workers}, "
        f"{requests} requests a step, 32 connections, open loop)"
    )
    print(f"host: {platform.node()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print("| database | endpoint | rate held /s | p50 ms | p99 ms | next rate: p99 ms | 5xx |")
    print("|---|---|---:|---:|---:|---:|---:|")
    targets = [("SQLite", None)]
    made = api.postgres_database(api.PG_URL)
    if made:
        targets.append(("PostgreSQL", made))
    for label, pg in targets:
        home = Path(tempfile.mkdtemp(prefix="synth_bench_capacity_"))
        url = pg[0] if pg else f"sqlite:///{home / 'factory.db'}"
        env = {**os.environ, "SYNTH_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
               "SYNTH_DATABASE_URL": url, "HF_HUB_OFFLINE": "1"}  # fmt: skip
        port = free_port()
        server = api.start_server(env, port, workers)
        try:
            warm = asyncio.run(api.burst(port, "warm", ["/datasets"] * 200, "POST", 8))
            ids = [json.loads(body)["id"] for body in warm.bodies]
            endpoints = {
                "GET /datasets/{id}": ("GET", [f"/datasets/{ids[i % len(ids)]}"
                                               for i in range(requests)]),
                "POST /datasets": ("POST", ["/datasets"] * requests),
            }  # fmt: skip
            for endpoint, (method, paths) in endpoints.items():
                held, last = None, None
                for rate in RATES:
                    got = asyncio.run(api.burst(port, endpoint, paths, method, 32, rate=rate))
                    ms = np.percentile(np.array(got.latencies) * 1000, [50, 99])
                    errors = sum(n for code, n in got.statuses.items() if code >= 500)
                    last = (rate, ms, errors)
                    if ms[1] > P99_LIMIT * 1000 or errors:
                        break
                    held = last
                if held is None:
                    print(f"| {label} | {endpoint} | none | | | {last[1][1]:.0f} | {last[2]} |")
                    continue
                beyond = f"{last[1][1]:.0f}" if last is not held else "(not reached)"
                print(
                    f"| {label} | {endpoint} | {held[0]:,} | {held[1][0]:.1f} | {held[1][1]:.1f} "
                    f"| {beyond} | {held[2]} |",
                    flush=True,
                )
        finally:
            stop_process(server)
            shutil.rmtree(home, ignore_errors=True)
            if pg:
                api.drop_postgres_database(api.PG_URL, pg[1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_runs":  # the timed runs, in their own process
        print(json.dumps(_timed_runs(sys.argv[2], int(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=PARTS, action="append", help="default: every part")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per executor")
    parser.add_argument("--api-requests", type=int, default=2000, help="requests a rate step")
    parser.add_argument("--api-workers", type=int, default=2, help="synth serve --workers")
    args = parser.parse_args()
    for part in args.part or PARTS:
        if part == "celery-overhead":
            celery_overhead(args.runs)
        elif part == "api-capacity":
            api_capacity(args.api_requests, args.api_workers)


if __name__ == "__main__":
    main()
