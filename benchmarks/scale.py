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
- `packaging`: packaging throughput with 1, 2 and 4 Celery workers (`--worker-counts`). One
  cluster of its own (tests/cluster.py: the production Dagster instance on PostgreSQL, a
  `dagster-daemon`, the factory DB on PostgreSQL, moto's S3 server, Celery on a RabbitMQ vhost
  and a Redis database of its own), its inventory filled in bulk; per worker count,
  `--packages` requests of 1 face are made at once and the daemon's dataset_request_sensor,
  run queue and launcher take them to ready. Reported: packages per minute from the requests'
  creation to the last one ready, and between the first and the last ready; the host's CPU
  seconds per package (every process on it: the cluster's alone only on a quiet host).
- `soak`: dataset requests through the API (`synth serve`) on PostgreSQL with Celery workers
  packaging them, bounded by `--soak-requests` and `--soak-minutes` (closed loop over
  `--soak-clients` connections: 4 POST /datasets of 1 face, round-robin over the buckets, for
  each GET /datasets/{id} of an earlier one), then `--soak-drain-minutes` more packaging.
  Reported: throughput, p50/p95/p99 latency per method, responses by code, queue-to-ready of
  the delivered requests, the request sensor's ticks, and a final consistency check: every
  request in a valid state, every delivered archive verified against its manifest, no face in
  two exclusive datasets.
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
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PARTS = ("celery-overhead", "api-capacity", "packaging", "soak")
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


# Every benchmark cluster: faces filled in bulk, so the refill sensor has nothing to top up and no
# refill competes with the packaging for the CPUs; requests of 1 face at 64 px.
BENCH_SETTINGS = {
    "SYNTH_FACE_SIZE": "64",
    "SYNTH_LABEL_SOURCE": "generator",
    "SYNTH_REFILL_WORKERS": "1",
    "SYNTH_TARGET_PER_BUCKET": "1",
    "SYNTH_REQUEST_SENSOR_INTERVAL": "5",
}


def _cpu_seconds() -> float:
    """CPU seconds the whole host has spent (user, nice, system), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:4]
    return sum(int(n) for n in fields) / os.sysconf("SC_CLK_TCK")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@contextmanager
def bench_cluster(label: str, faces: int) -> Iterator:
    """A cluster of its own (tests/cluster.py) with `faces` faces, their images on S3: a RabbitMQ
    vhost and a Redis database no one else uses (a test run may use the default ones meanwhile),
    a new PostgreSQL database for the factory DB, moto's S3 server in its own process."""
    import redis

    sys.path.insert(0, str(REPO / "benchmarks"))
    import api
    import scale_inventory

    from synth_pipelines.core.storage.object_store import open_object_store
    from synth_pipelines.settings import Settings
    from tests.cluster import free_redis_db, moto_server, open_cluster, own_vhost

    made = api.postgres_database(api.PG_URL)
    if made is None:
        raise SystemExit(f"the {label} benchmark needs PostgreSQL at {api.PG_URL}")
    url, name = made
    root = Path(tempfile.mkdtemp(prefix=f"synth_bench_{label}_"))
    redis_db = free_redis_db()
    try:
        with own_vhost(f"synth-bench-{os.getpid()}") as broker, moto_server() as s3:
            backend = f"redis://127.0.0.1:6379/{redis_db}"
            with open_cluster(
                root, url, s3, broker=broker, backend=backend, settings=BENCH_SETTINGS
            ) as cluster:
                store = open_object_store(**Settings.from_env(cluster.env).store_options())
                seconds = scale_inventory.fill(url, 0, faces, store, real_below=faces)
                print(f"{faces:,} faces filled in {seconds:.0f} s; logs in {root}", flush=True)
                yield cluster
    finally:
        redis.Redis(db=redis_db).flushdb()
        api.drop_postgres_database(api.PG_URL, name)


def _statuses(db, ids: list[str] | None = None) -> dict[str, int]:
    from sqlalchemy import func, select

    from synth_pipelines.core.storage.models import DatasetRequest

    query = select(DatasetRequest.status, func.count()).group_by(DatasetRequest.status)
    if ids is not None:
        query = query.where(DatasetRequest.id.in_(ids))
    with db.session(read_only=True) as session:
        return dict(session.execute(query).all())


def _wait_delivered(db, ids: list[str], timeout: float) -> list[float]:
    """Once every one of `ids` is ready (or failed): their completion times, sorted."""
    from sqlalchemy import select

    from synth_pipelines.core.storage.models import DatasetRequest

    deadline = time.monotonic() + timeout
    while True:
        with db.session(read_only=True) as session:
            rows = session.execute(
                select(DatasetRequest.status, DatasetRequest.completed_at).where(
                    DatasetRequest.id.in_(ids)
                )
            ).all()
        done = [row for row in rows if row.status in ("ready", "failed")]
        if len(done) == len(ids):
            failed = [row for row in rows if row.status == "failed"]
            if failed:
                raise SystemExit(f"{len(failed)} packaging run(s) failed")
            return sorted(row.completed_at.timestamp() for row in done)
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(done)} of {len(ids)} requests ready after {timeout:.0f} s")
        time.sleep(1)


def _make_requests(db, count: int, offset: int = 0) -> list[str]:
    from synth_pipelines.core.delivery.requests import create_request
    from synth_pipelines.core.delivery.spec import DatasetSpec
    from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS

    keys = ALL_BUCKET_KEYS
    return [
        create_request(db, DatasetSpec.parse({"buckets": {keys[(offset + i) % 10]: 1}}, 10)).id
        for i in range(count)
    ]


def packaging(worker_counts: list[int], per_count: int) -> None:
    from synth_pipelines.execution import DEFAULT_QUEUE

    rows = []
    with bench_cluster("packaging", faces=20 * per_count * len(worker_counts) + 100) as cluster:
        cluster.start_workers([("w0", DEFAULT_QUEUE)])
        cluster.start_daemon()
        # Warm: the daemon's first ticks, its code server, one run end to end.
        _wait_delivered(cluster.db, _make_requests(cluster.db, 1), 600)
        for count in worker_counts:
            more = [(f"w{n}", DEFAULT_QUEUE) for n in range(len(cluster.workers), count)]
            cluster.start_workers(more)
            load_before, cpu_before = _load(), _cpu_seconds()
            made = time.time()
            ids = _make_requests(cluster.db, per_count)
            done = _wait_delivered(cluster.db, ids, 1800)
            cpu = (_cpu_seconds() - cpu_before) / per_count
            total = done[-1] - made
            between = done[-1] - done[0]
            rows.append(
                (count, per_count, total, per_count / total * 60,
                 (per_count - 1) / between * 60 if between else float("nan"),
                 cpu, load_before, _load())
            )  # fmt: skip
            print(f"{count} worker(s): {per_count} packages in {total:.0f} s", flush=True)
    print(
        f"\nPackaging throughput by Celery worker count ({per_count} requests of 1 face at 64 px "
        "made at once per row; dagster-daemon: sensor every 5 s, queued run coordinator with 4 "
        "concurrent runs, default run launcher; workers --pool solo)"
    )
    print(f"host: {platform.node()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print("| workers | packages | made → last ready s | packages/min | first → last ready "
          "packages/min | host CPU-s per package | load before | load after |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---|---|")
    for count, n, total, rate, steady, cpu, before, after in rows:
        print(f"| {count} | {n} | {total:.0f} | {rate:.1f} | {steady:.1f} | {cpu:.1f} | {before} "
              f"| {after} |")  # fmt: skip


def _percentiles(values: list[float], scale: float = 1000.0) -> str:
    import numpy as np

    if not values:
        return "- | - | -"
    p = np.percentile(np.array(values) * scale, [50, 95, 99])
    return f"{p[0]:.0f} | {p[1]:.0f} | {p[2]:.0f}"


def soak(
    requests: int, minutes: float, clients: int, workers: int, drain: float, api_workers: int
) -> None:
    import asyncio
    import random

    sys.path.insert(0, str(REPO / "benchmarks"))
    import api  # benchmarks/api.py: the client

    from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS
    from synth_pipelines.execution import DEFAULT_QUEUE
    from tests.helpers import free_port, stop_process

    faces = 3000  # the most that can be delivered in a soak of 20 min, 10 times over
    latencies: dict[str, list[float]] = {"POST": [], "GET": []}
    codes: dict[str, Counter] = {"POST": Counter(), "GET": Counter()}
    ids: list[str] = []
    rng = random.Random(19)
    post_clients = max(1, clients * 4 // 5)
    get_clients = max(1, clients - post_clients)
    with bench_cluster("soak", faces=faces) as cluster:
        cluster.start_workers([(f"w{n}", DEFAULT_QUEUE) for n in range(workers)])
        cluster.start_daemon()
        port = free_port()
        server = api.start_server(cluster.env, port, api_workers)
        print(f"soak: load {_load()}", flush=True)
        try:
            began = time.monotonic()
            end = began + minutes * 60
            sent, round_ = 0, 0
            while sent < requests and time.monotonic() < end:
                n = min(1000, requests - sent)
                body = json.dumps({"buckets": {ALL_BUCKET_KEYS[round_ % 10]: 1}}).encode()
                gets = [f"/datasets/{rng.choice(ids)}" for _ in range(n // 4)] if ids else []

                async def one_round(n=n, body=body, gets=gets):
                    jobs = [api.burst(port, "POST", ["/datasets"] * n, "POST", post_clients,
                                      body=body)]  # fmt: skip
                    if gets:
                        jobs.append(api.burst(port, "GET", gets, "GET", get_clients))
                    return await asyncio.gather(*jobs)

                for method, got in zip(("POST", "GET"), asyncio.run(one_round()), strict=False):
                    latencies[method] += got.latencies
                    codes[method].update(got.statuses)
                    if method == "POST":
                        for answer in got.bodies:
                            with suppress(ValueError, KeyError):
                                ids.append(json.loads(answer)["id"])
                sent += n
                round_ += 1
                if round_ % 10 == 0:
                    states = _statuses(cluster.db)
                    print(f"{time.monotonic() - began:6.0f} s: {sent:,} POSTs, {states}, "
                          f"load {_load()}", flush=True)  # fmt: skip
            load_wall = time.monotonic() - began
            load_at_end = _load()
        finally:
            stop_process(server)
        drain_end = time.monotonic() + drain * 60
        while time.monotonic() < drain_end:
            time.sleep(30)
            print(f"drain: {_statuses(cluster.db)}, load {_load()}", flush=True)
        total_wall = time.monotonic() - began
        ticks = _sensor_ticks(cluster.instance)
        runs = _stop_and_settle(cluster)
        check = _consistency(cluster)
        explain = _explain_new_requests(cluster.db)
    sent_total = sum(len(v) for v in latencies.values())
    print(
        f"\nSoak: {len(latencies['POST']):,} POST /datasets + {len(latencies['GET']):,} GET "
        f"/datasets/{{id}} through synth serve --workers {api_workers} on PostgreSQL, "
        f"{clients} connections closed loop, {workers} Celery worker(s) packaging; load phase "
        f"{load_wall / 60:.1f} min, then {drain:.0f} min more packaging"
    )
    print(f"host: {platform.node()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"load at the end of the load phase {load_at_end}")  # fmt: skip
    print(f"\nthroughput: {sent_total / load_wall:.0f} requests/s")
    print("| method | requests | p50 ms | p95 ms | p99 ms | codes |")
    print("|---|---:|---:|---:|---:|---|")
    for method in ("POST", "GET"):
        shown = ", ".join(f"{code}: {n:,}" for code, n in sorted(codes[method].items()))
        print(f"| {method} | {len(latencies[method]):,} | {_percentiles(latencies[method])} | "
              f"{shown} |")  # fmt: skip
    errors = sum(n for c in codes.values() for code, n in c.items() if code >= 500)
    print(f"5xx: {errors}")
    ready = check["ready_seconds"]
    print(f"\ndelivered: {len(ready):,} of {len(ids):,} in {total_wall / 60:.1f} min "
          f"({len(ready) / (total_wall / 60):.1f}/min)")  # fmt: skip
    print(f"queue-to-ready s: p50 | p95 | p99 = {_percentiles(ready, 1.0)}; "
          f"max {max(ready) if ready else 0:.0f}")  # fmt: skip
    print(f"still pending at the end: {check['statuses'].get('pending', 0):,}, the oldest made "
          f"{check['oldest_pending_s'] / 60:.1f} min before")  # fmt: skip
    print(f"runs: {runs}")
    print(f"request sensor: {ticks}")
    print(f"end states: {check['statuses']}")
    for line in check["problems"] or ["consistency: every request in a valid state, every "
                                      f"archive verified ({check['archives']}), no face in "
                                      "two exclusive datasets"]:  # fmt: skip
        print(line)
    print("\nthe sensor's query for new requests, on the soak's table:\n" + explain)


def _sensor_ticks(instance) -> str:
    """The dataset_request_sensor's ticks: how many, by status, their seconds, runs asked."""
    import numpy as np
    from dagster._core.scheduler.instigation import InstigatorType

    from synth_pipelines.lines.datasets.sensors import DATASET_REQUEST_SENSOR

    (state,) = [
        s
        for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        if s.instigator_name == DATASET_REQUEST_SENSOR
    ]
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=100_000)
    seconds = [t.end_timestamp - t.timestamp for t in ticks if t.end_timestamp]
    statuses = Counter(t.status.value for t in ticks)
    runs = sum(len(t.run_ids) for t in ticks)
    p50, p95 = np.percentile(seconds, [50, 95]) if seconds else (0, 0)
    return (
        f"{len(ticks)} ticks {dict(statuses)}, tick s p50 {p50:.2f} p95 {p95:.2f} max "
        f"{max(seconds, default=0):.2f}, {runs:,} runs requested"
    )


def _stop_and_settle(cluster, timeout: float = 300) -> str:
    """Stop the daemon (no more launches), let the runs in flight end, stop the workers: the
    runs by status."""
    import dagster as dg

    if cluster.daemon is not None:
        from tests.helpers import stop_process

        stop_process(cluster.daemon, grace=30)
        cluster.daemon = None
    live = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
    deadline = time.monotonic() + timeout
    while cluster.instance.get_runs_count(dg.RunsFilter(statuses=live)):
        if time.monotonic() > deadline:
            break
        time.sleep(2)
    cluster.stop()
    counts = {
        status.value: cluster.instance.get_runs_count(dg.RunsFilter(statuses=[status]))
        for status in dg.DagsterRunStatus
    }
    return ", ".join(f"{k}: {v:,}" for k, v in counts.items() if v)


def _consistency(cluster) -> dict:
    """Every request in a valid state; every delivered archive verified, holding exactly the
    faces the database delivered to it; no face in two exclusive datasets."""
    from sqlalchemy import func, select

    from synth_pipelines.core.clock import aware, utcnow
    from synth_pipelines.core.delivery.spec import request_spec
    from synth_pipelines.core.delivery.verify import verify_archive
    from synth_pipelines.core.storage.models import DatasetRequest, Face
    from synth_pipelines.core.storage.object_store import open_object_store
    from synth_pipelines.settings import Settings

    store = open_object_store(**Settings.from_env(cluster.env).store_options())
    db, problems = cluster.db, []
    now = utcnow()
    waiting = DatasetRequest.status.in_(("pending", "backordered"))
    with db.session(read_only=True) as session:
        # Waiting requests are counted; the others (a few hundred) are read and checked.
        requests = session.execute(select(DatasetRequest).where(~waiting)).scalars().all()
        oldest = session.scalar(
            select(func.min(DatasetRequest.created_at)).where(DatasetRequest.status == "pending")
        )
        owners: dict[str, list[str]] = {}
        for face_id, request_id in session.execute(
            select(Face.id, Face.request_id).where(Face.request_id.is_not(None))
        ):
            owners.setdefault(request_id, []).append(face_id)
    statuses = _statuses(db)
    in_archives: dict[str, str] = {}
    ready_seconds, archives = [], 0
    for r in requests:
        if r.status == "packaging" and r.lease_until and aware(r.lease_until) > now:
            continue  # its run still holds it
        if r.status != "ready":
            problems.append(f"request {r.id} is {r.status}: {r.error or r.reason}")
            continue
        ready_seconds.append(r.ready_seconds)
        spec = request_spec(r)
        with tempfile.NamedTemporaryFile(suffix=".zip") as out:
            out.write(store.get_bytes(r.archive_key))
            out.flush()
            manifest = verify_archive(out.name)
        archives += 1
        faces = {Path(name).stem for name in manifest["files"] if name.startswith("images/")}
        if r.delivered != spec.buckets or len(faces) != r.total:
            problems.append(f"request {r.id}: delivered {r.delivered}, asked {spec.buckets}")
        if spec.exclusive:
            if faces != set(owners.get(r.id, [])):
                problems.append(f"request {r.id}: its archive and the DB disagree on its faces")
            for face in faces:
                if face in in_archives:
                    problems.append(f"face {face} in {in_archives[face]} and {r.id}")
                in_archives[face] = r.id
    return {
        "statuses": dict(statuses),
        "problems": problems,
        "ready_seconds": ready_seconds,
        "archives": archives,
        "oldest_pending_s": (now - aware(oldest)).total_seconds() if oldest else 0.0,
    }


def _explain_new_requests(db) -> str:
    """EXPLAIN ANALYZE of the request sensor's read of new requests (core/delivery/requests)."""
    from sqlalchemy import text

    from synth_pipelines.core.delivery.requests import new_requests_query

    sql = new_requests_query(None, 200).compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.engine.connect() as conn:
        rows = conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")).all()
        conn.rollback()
    return "\n".join(row[0] for row in rows)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_runs":  # the timed runs, in their own process
        print(json.dumps(_timed_runs(sys.argv[2], int(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=PARTS, action="append", help="default: every part")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per executor")
    parser.add_argument("--api-requests", type=int, default=2000, help="requests a rate step")
    parser.add_argument("--api-workers", type=int, default=2, help="synth serve --workers")
    parser.add_argument("--worker-counts", default="1,2,4", help="packaging: Celery workers")
    parser.add_argument("--packages", type=int, default=20, help="packaging: requests a row")
    parser.add_argument("--soak-requests", type=int, default=100_000, help="soak: POSTs at most")
    parser.add_argument("--soak-minutes", type=float, default=15, help="soak: load phase bound")
    parser.add_argument("--soak-drain-minutes", type=float, default=2, help="soak: then wait")
    parser.add_argument("--soak-clients", type=int, default=20, help="soak: connections")
    parser.add_argument("--soak-workers", type=int, default=2, help="soak: Celery workers")
    args = parser.parse_args()
    for part in args.part or PARTS:
        if part == "celery-overhead":
            celery_overhead(args.runs)
        elif part == "api-capacity":
            api_capacity(args.api_requests, args.api_workers)
        elif part == "packaging":
            counts = [int(n) for n in args.worker_counts.split(",")]
            packaging(counts, args.packages)
        elif part == "soak":
            soak(
                args.soak_requests,
                args.soak_minutes,
                args.soak_clients,
                args.soak_workers,
                args.soak_drain_minutes,
                args.api_workers,
            )


if __name__ == "__main__":
    main()
