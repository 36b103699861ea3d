"""SYNTH_EXECUTOR=celery on real engines: RabbitMQ as the broker, Redis as the result backend,
real Celery worker processes (synth_pipelines/execution.py's command, two on the default queue,
one step at a time each), the production Dagster instance (deploy/dagster.yaml) on its own
PostgreSQL database, the factory DB on PostgreSQL and the object store on moto's S3 server.

Each run is launched as a deployment launches it, in a process of its own (tests/celery_runs.py),
and its steps go through the broker to the workers. Skipped, with the reason, where RabbitMQ or
Redis does not answer (`.ci/run` starts both).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import dagster as dg
import pytest
from sqlalchemy import func, make_url, select

from synth_pipelines.core.delivery.requests import get_request
from synth_pipelines.core.faces.buckets import ALL_BUCKETS, Bucket
from synth_pipelines.core.faces.inventory import inventory_levels
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import Face
from synth_pipelines.definitions import build_definitions
from synth_pipelines.execution import (
    DEFAULT_QUEUE,
    GPU_QUEUE,
    QUEUE_TAG,
    BrokerUnreachableError,
    check_reachable,
    executor_config,
    redacted,
)
from synth_pipelines.lines.datasets.sensors import PACKAGE_JOB
from synth_pipelines.lines.faces.sensors import REFILL_JOB, refill_run_config
from synth_pipelines.lines.flux.sensors import FLUX_JOB
from synth_pipelines.lines.imagesets.sensors import IMAGE_SET_JOB
from synth_pipelines.lines.personas.sensors import PERSONA_JOB
from synth_pipelines.lines.tabular.sensors import TABULAR_JOB
from synth_pipelines.partitions import (
    dataset_requests,
    face_buckets,
    partition_for_bucket,
    tabular_jobs,
)
from synth_pipelines.settings import Settings
from tests.cluster import (
    BACKEND,
    BROKER,
    REPO,
    RUN_TIMEOUT,
    WORKER_READY_TIMEOUT,
    Cluster,
    open_cluster,
    purge_queues,
)
from tests.conftest import REGION, _pg_admin_connect
from tests.helpers import free_port, request, stop_process

pytestmark = pytest.mark.xdist_group("celery")

PER_BUCKET = 3  # faces each bucket's refill adds
PACKAGES = 20  # dataset requests packaged at once
KILLED_REFILL = 200  # faces of the refill whose worker is killed: a step of seconds (40 took
# 1.04 s on a quiet host, ending before the kill)
KILL_AFTER = 1.0  # seconds into that step


def _services_or_skip() -> None:
    try:
        check_reachable(BROKER, BACKEND, timeout=3)
    except BrokerUnreachableError as exc:
        pytest.skip(f"RabbitMQ or Redis not reachable here: {exc}")


def refill_run(bucket: Bucket, count: int) -> dict:
    key = partition_for_bucket(bucket)
    return {
        "job": REFILL_JOB,
        "tags": face_buckets.get_tags_for_partition_key(key),
        "run_config": refill_run_config(count),
    }


def package_run(request_id: str) -> dict:
    return {"job": PACKAGE_JOB, "tags": {"dagster/partition": request_id}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pg_database, moto_endpoint) -> Iterator[Cluster]:
    _services_or_skip()
    root = tmp_path_factory.mktemp("celery")
    # The factory DB in a schema of the session's database (the Dagster instance gets its own).
    schema = f"celery_{uuid.uuid4().hex[:10]}"
    with _pg_admin_connect(make_url(pg_database).database) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    settings = {
        "SYNTH_FACE_SIZE": "64",
        "SYNTH_LABEL_SOURCE": "generator",
        "SYNTH_REFILL_WORKERS": "1",
        "SYNTH_TARGET_PER_BUCKET": "10",
        "SYNTH_TABULAR_EMBEDDER": "hashing",
        # Each tabular job's chunks in two shards, each a step: on both workers.
        "SYNTH_TABULAR_SHARDS": "2",
    }
    factory_url = f"{pg_database}?options=-csearch_path%3D{schema}"
    with open_cluster(root, factory_url, moto_endpoint, settings=settings) as cluster:
        purge_queues()
        cluster.start_workers([("default1", DEFAULT_QUEUE), ("default2", DEFAULT_QUEUE)])
        yield cluster


def test_the_lines_run_in_process_unless_celery_is_chosen(synth_home, monkeypatch) -> None:
    """Nothing changes for a deployment that does not opt in: every line's job keeps the
    in-process executor. SYNTH_EXECUTOR=celery puts them all on the Celery executor, whose
    broker and backend URLs (they may hold a password) are read from the environment at run
    time rather than written into the job's config."""
    # Every line's partition job (the check jobs keep their own in-process executor).
    jobs = (REFILL_JOB, PACKAGE_JOB, TABULAR_JOB, PERSONA_JOB, FLUX_JOB, IMAGE_SET_JOB)
    defs = build_definitions(Settings.from_env())
    assert all(defs.resolve_job_def(job).executor_def is dg.in_process_executor for job in jobs)
    monkeypatch.setenv("SYNTH_EXECUTOR", "celery")
    monkeypatch.setenv("SYNTH_CELERY_BROKER_URL", "amqp://user:s3cret@broker.internal:5672//")
    settings = Settings.from_env()
    defs = build_definitions(settings)
    assert {defs.resolve_job_def(job).executor_def.name for job in jobs} == {"synth_celery"}
    config = executor_config(settings.execution)
    assert config["broker"] == {"env": "SYNTH_CELERY_BROKER_URL"}
    assert config["backend"] == "redis://127.0.0.1:6379/0"  # the default, no secret in it
    assert config["config_source"]["task_acks_late"] is True
    assert (
        redacted(settings.execution.celery_broker_url) == "amqp://user:***@broker.internal:5672//"
    )


def test_every_gpu_pool_step_goes_to_the_gpu_queue_and_no_other(synth_home, monkeypatch) -> None:
    monkeypatch.setenv("SYNTH_FACE_GENERATOR", "stylegan2")  # face_inventory in the gpu pool
    defs = build_definitions(Settings.from_env())
    ops = {a.op.name: a.op for a in defs.resolve_asset_graph().assets_defs}
    gpu = {name for name, op in ops.items() if op.pool == "gpu"}
    queued = {name for name, op in ops.items() if op.tags.get(QUEUE_TAG) == GPU_QUEUE}
    assert gpu == queued
    assert {"face_inventory", "persona_adapter", "flux_lora", "synthetic_image_set"} <= gpu
    monkeypatch.setenv("SYNTH_FACE_GENERATOR", "simulator")  # a CPU generator: default queue
    ops = {
        a.op.name: a.op
        for a in build_definitions(Settings.from_env()).resolve_asset_graph().assets_defs
    }
    assert QUEUE_TAG not in ops["face_inventory"].tags and ops["face_inventory"].pool is None


def test_make_workers_starts_default_and_gpu_workers_and_ctrl_c_stops_them(tmp_path) -> None:
    """The README's `make workers` is `python -m synth_pipelines.execution workers`: it starts
    one worker per queue slot asked for, each listening on its queue, and Ctrl-C (SIGINT to the
    process group, as a terminal sends it) stops them all. (First in the module: the cluster's
    workers, started later, have the same names.)"""
    _services_or_skip()
    from celery import Celery

    from tests.test_readme_commands import make_recipe

    _, recipe = make_recipe("workers")
    assert recipe == [
        "$(BIN)/python -m synth_pipelines.execution workers "
        "--default $(WORKERS) --gpu $(GPU_WORKERS)"
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTH_")}
    env.update(
        SYNTH_HOME=str(tmp_path), DAGSTER_HOME=str(tmp_path / "dagster"), PYTHONPATH=str(REPO),
        SYNTH_CELERY_BROKER_URL=BROKER, SYNTH_CELERY_BACKEND_URL=BACKEND,
    )  # fmt: skip
    argv = [sys.executable, "-m", "synth_pipelines.execution", "workers", "--default", "1"]
    process = subprocess.Popen([*argv, "--gpu", "1"], cwd=REPO, env=env, start_new_session=True)
    app = Celery("inspect", broker=BROKER, backend=BACKEND)
    try:
        deadline = time.monotonic() + WORKER_READY_TIMEOUT
        queues: dict[str, list[str]] = {}
        while set(queues) != {"default1", "gpu1"}:
            assert process.poll() is None, "make workers exited"
            assert time.monotonic() < deadline, f"workers not answering: {queues}"
            answers = app.control.inspect(timeout=1).active_queues() or {}
            queues = {
                name.split("@")[0]: [q["name"] for q in listening]
                for name, listening in answers.items()
                if name.split("@")[0] in ("default1", "gpu1")
            }
        assert queues == {"default1": [DEFAULT_QUEUE], "gpu1": [GPU_QUEUE]}
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def refilled(cluster) -> list[dict]:
    """All ten buckets refilled through the workers: ten runs at once, PER_BUCKET faces each."""
    return cluster.run([refill_run(bucket, PER_BUCKET) for bucket in ALL_BUCKETS])


def test_a_refill_of_all_ten_buckets_runs_on_the_celery_workers(cluster, refilled) -> None:
    assert [run["success"] for run in refilled] == [True] * 10
    levels = inventory_levels(cluster.db)
    assert {bucket.key: levels[bucket.key] for bucket in ALL_BUCKETS} == {
        bucket.key: PER_BUCKET for bucket in ALL_BUCKETS
    }
    workers = [w for run in refilled for w in cluster.step_workers(run["run_id"])]
    assert len(workers) == 10  # one step per run, each run by one worker
    # Both workers took steps: the runs' steps spread over the processes.
    assert {w.split("@")[0] for w in workers} == {"default1", "default2"}
    run = cluster.instance.get_run_by_id(refilled[0]["run_id"])
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert cluster.instance.get_run_by_id(refilled[0]["run_id"]).job_name == REFILL_JOB


def test_the_broker_down_at_submit_fails_the_run_naming_it_and_records_nothing(
    cluster, refilled
) -> None:
    before = inventory_levels(cluster.db)
    closed = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    env = {**cluster.env, "SYNTH_CELERY_BROKER_URL": closed}
    (result,) = cluster.run([refill_run(Bucket("male", "senior"), 2)], env=env)
    assert not result["success"]
    failures = cluster.instance.get_records_for_run(
        result["run_id"], of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    engine_errors = cluster.instance.get_records_for_run(result["run_id"]).records
    text = "\n".join(
        str(r.event_log_entry.dagster_event.event_specific_data) for r in engine_errors
    )
    assert failures
    assert f"the Celery broker at amqp://guest:***@127.0.0.1:{closed.split(':')[-1]}" in text
    assert "guest:guest@" not in text  # the password is not logged
    # No step started, nothing stored.
    assert not cluster.instance.get_records_for_run(
        result["run_id"], of_type=dg.DagsterEventType.STEP_START
    ).records
    assert inventory_levels(cluster.db) == before


def test_concurrent_dataset_packages_each_deliver_their_own_faces(cluster, refilled) -> None:
    """PACKAGES requests packaged by as many runs at once, through the two workers: every one
    ready with what it asked for, no face in two of them."""
    ids = [request(cluster.db, {ALL_BUCKETS[i % 10].key: 1}) for i in range(PACKAGES)]
    cluster.instance.add_dynamic_partitions(dataset_requests.name, ids)
    results = cluster.run([package_run(request_id) for request_id in ids])
    assert [run["success"] for run in results] == [True] * PACKAGES
    requests = [get_request(cluster.db, request_id) for request_id in ids]
    assert [r.status for r in requests] == ["ready"] * PACKAGES
    assert [r.delivered for r in requests] == [
        {ALL_BUCKETS[i % 10].key: 1} for i in range(PACKAGES)
    ]
    with cluster.db.session() as session:
        owners = session.execute(
            select(Face.id, Face.request_id).where(Face.request_id.in_(ids))
        ).all()
    assert len(owners) == len({face for face, _ in owners}) == PACKAGES
    assert sorted(owner for _, owner in owners) == sorted(ids)
    workers = {w.split("@")[0] for run in results for w in cluster.step_workers(run["run_id"])}
    assert workers == {"default1", "default2"}


TABLE = {
    "name": "orders",
    "columns": [
        {"name": "id", "type": "integer", "semantic_type": "id", "unique": True},
        {"name": "quantity", "type": "integer", "min": 1, "max": 9},
        {"name": "channel", "type": "category", "categories": ["web", "shop", "phone"]},
    ],
}


def _tabular_jobs(cluster: Cluster, seeds: range) -> list[str]:
    from synth_pipelines.core.tabular.jobs import JobParams, confirm_job, create_job
    from synth_pipelines.core.tabular.schema import TableSchema

    ids = []
    for seed in seeds:
        job = create_job(cluster.db, "orders", TableSchema.parse(TABLE), "celery test")
        confirm_job(cluster.db, job.id, JobParams(200, 50, 1, 1.0, seed))  # 4 chunks
        ids.append(job.id)
    cluster.instance.add_dynamic_partitions(tabular_jobs.name, ids)
    return ids


def _tabular_output(cluster: Cluster, job_id: str):
    import pyarrow.parquet as pq

    from synth_pipelines.core.storage.s3_object_store import S3ObjectStore
    from synth_pipelines.core.tabular.jobs import get_job

    store = S3ObjectStore(
        cluster.env["SYNTH_S3_BUCKET"],
        endpoint_url=cluster.env["SYNTH_S3_ENDPOINT_URL"],
        region_name=REGION,
    )
    job = get_job(cluster.db, job_id)
    assert job.status == "completed"
    assert list(store.list_keys(f"tabular/{job_id}/shards/")) == []  # shards cleaned up
    return pq.read_table(io.BytesIO(store.get_bytes(job.outputs["parquet"])))


def test_a_tabular_jobs_chunks_run_on_different_workers_and_make_the_one_step_rows(
    cluster,
) -> None:
    """One job, its 4 chunks in 2 shards (SYNTH_TABULAR_SHARDS=2): the plan, then each shard's
    step on its own worker at once, then the assembling step; the rows on S3 are the rows the
    same job makes in one step, in process."""
    import pyarrow as pa

    from synth_pipelines.core.tabular.generator import generate_table
    from synth_pipelines.core.tabular.schema import TableSchema

    (job_id,) = _tabular_jobs(cluster, range(7, 8))
    (result,) = cluster.run([{"job": TABULAR_JOB, "tags": {"dagster/partition": job_id}}])
    assert result["success"]
    steps = dict(cluster.workers_by_step(result["run_id"]))
    shards = {step: worker.split("@")[0] for step, worker in steps.items() if "shard[" in step}
    assert sorted(shards) == [f"tabular_dataset.tabular_shard[shard_{i}]" for i in range(2)]
    assert set(shards.values()) == {"default1", "default2"}
    chunks = generate_table(TableSchema.parse(TABLE), total_rows=200, chunk_size=50, seed=7)
    expected = pa.concat_tables([table for _index, table in chunks])
    assert _tabular_output(cluster, job_id).equals(expected)


def test_tabular_jobs_run_on_both_workers_and_store_every_row_on_s3(cluster) -> None:
    """Four confirmed tabular jobs at once, each in shards: their steps spread over both
    workers, every job completed with all its rows in the S3 store."""
    ids = _tabular_jobs(cluster, range(4))
    results = cluster.run([{"job": TABULAR_JOB, "tags": {"dagster/partition": i}} for i in ids])
    assert [run["success"] for run in results] == [True] * 4
    for job_id in ids:
        table = _tabular_output(cluster, job_id)
        assert table.num_rows == 200 and len(set(table.column("id").to_pylist())) == 200
    workers = {w.split("@")[0] for run in results for w in cluster.step_workers(run["run_id"])}
    assert workers == {"default1", "default2"}


def test_gpu_steps_go_to_the_gpu_queue_and_keep_the_pool_limit_across_workers(
    cluster, refilled, tmp_path
) -> None:
    """Two refills with a GPU generator (a tiny StyleGAN2 checkpoint) at once, with two workers on
    the gpu queue: each step runs on a gpu worker, and the instance's `gpu` pool (limit 1,
    deploy/dagster.yaml) lets only one run at a time, although both workers are free."""
    from tests.test_stylegan2 import save_tiny_stylegan2

    checkpoint = save_tiny_stylegan2(tmp_path / "tiny.pt")
    env = {
        **cluster.env,
        "SYNTH_FACE_GENERATOR": "stylegan2",
        "SYNTH_STYLEGAN_CHECKPOINT": str(checkpoint),
    }
    # The pool's row set once, as a deployment does (README): left to deploy/dagster.yaml's
    # default, Dagster creates it at the first claim, and two first claims at once on a fresh
    # instance can collide on its unique key (seen once: UniqueViolation).
    cluster.instance.event_log_storage.set_concurrency_slots("gpu", 1)
    gpu_workers = Cluster(cluster.root, env, cluster.instance, cluster.db)
    try:
        gpu_workers.start_workers([("gpu1", GPU_QUEUE), ("gpu2", GPU_QUEUE)])
        buckets = [Bucket("female", "teen"), Bucket("male", "teen")]
        results = cluster.run([refill_run(bucket, 2) for bucket in buckets], env=env)
    finally:
        for process in gpu_workers.workers.values():
            stop_process(process)
    assert [run["success"] for run in results] == [True, True]
    for run in results:
        submitted = [
            r.event_log_entry.dagster_event.message
            for r in cluster.instance.get_records_for_run(
                run["run_id"], of_type=dg.DagsterEventType.ENGINE_EVENT
            ).records
            if "Submitting celery task" in (r.event_log_entry.dagster_event.message or "")
        ]
        assert submitted == [
            f'Submitting celery task for step "face_inventory" to queue "{GPU_QUEUE}".'
        ]
    workers = [w.split("@")[0] for run in results for w in cluster.step_workers(run["run_id"])]
    assert len(workers) == 2 and set(workers) <= {"gpu1", "gpu2"}
    windows = sorted(step_window(cluster.instance, run["run_id"]) for run in results)
    assert windows[0][1] <= windows[1][0], f"gpu steps overlapped: {windows}"
    assert cluster.instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1


def step_window(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    """When the run's one step started and when it succeeded (event timestamps)."""
    (start,) = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records
    (end,) = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS).records
    return start.event_log_entry.timestamp, end.event_log_entry.timestamp


def test_a_worker_killed_mid_step_hands_the_step_to_another_and_nothing_is_doubled(
    cluster,
) -> None:
    """SIGKILL to the worker running a refill's step, mid-step: the broker gives the
    unacknowledged step to the other worker, which resumes the same batch; the run succeeds
    with exactly the faces asked for, each stored once. (Last in the module: it kills one of
    the two workers.)"""
    bucket, count = Bucket("male", "adult"), KILLED_REFILL
    before = inventory_levels(cluster.db)[bucket.key]
    stored_before = len(bucket_hashes(cluster.db, bucket))
    token = uuid.uuid4().hex
    run = refill_run(bucket, count)
    run["tags"] = {**run["tags"], "synth/test": token}
    launched = cluster.launch([run])
    deadline = time.monotonic() + RUN_TIMEOUT
    run_id = victim = None
    while victim is None:
        assert time.monotonic() < deadline, "the refill's step never started on a worker"
        runs = cluster.instance.get_runs(filters=dg.RunsFilter(tags={"synth/test": token}))
        if runs:
            run_id = runs[0].run_id
            started = cluster.instance.get_records_for_run(
                run_id, of_type=dg.DagsterEventType.STEP_START
            ).records
            workers = cluster.step_workers(run_id)
            if started and workers:
                victim = workers[0].split("@")[0]
        time.sleep(0.2)
    time.sleep(KILL_AFTER)  # into the batch
    assert not cluster.instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.STEP_SUCCESS
    ).records, "the step ended before the worker could be killed: make KILLED_REFILL larger"
    cluster.workers[victim].send_signal(signal.SIGKILL)
    cluster.workers[victim].wait()
    (result,) = cluster.wait(launched)
    assert result == {"run_id": run_id, "success": True}
    workers = [w.split("@")[0] for w in cluster.step_workers(run_id)]
    survivor = ({"default1", "default2"} - {victim}).pop()
    assert workers == [victim, survivor]
    assert inventory_levels(cluster.db)[bucket.key] == before + count
    hashes = bucket_hashes(cluster.db, bucket)  # every face of the bucket, delivered ones too
    assert len(hashes) == len(set(hashes)) == stored_before + count
    with cluster.db.session() as session:
        batch = session.execute(
            select(func.count()).select_from(Face).where(Face.batch_id == f"{run_id}:{bucket.key}")
        ).scalar_one()
    assert batch == count


def bucket_hashes(db: FactoryDatabase, bucket: Bucket) -> list[str]:
    """The content hash of every face stored in `bucket`, whatever its status."""
    with db.session() as session:
        return list(
            session.execute(
                select(Face.sha256).where(
                    Face.gender == bucket.gender, Face.age_group == bucket.age_group
                )
            ).scalars()
        )
