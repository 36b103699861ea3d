"""SYNTH_EXECUTOR=celery on real engines: RabbitMQ as the broker, Redis as the result backend,
real Celery worker processes (synth_pipelines/execution.py's command, two on the default queue,
one step at a time each), the production Dagster instance (deploy/dagster.yaml) on its own
PostgreSQL database, the factory DB on PostgreSQL and the object store on moto's S3 server.

Each run is launched as a deployment launches it, in a process of its own (tests/celery_runs.py),
and its steps go through the broker to the workers. Skipped, with the reason, where RabbitMQ or
Redis does not answer (`.ci/run` starts both).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import func, make_url, select

from synth_pipelines.core.delivery.requests import get_request
from synth_pipelines.core.faces.buckets import ALL_BUCKETS, Bucket
from synth_pipelines.core.faces.inventory import inventory_levels
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import Face
from synth_pipelines.execution import (
    DEFAULT_QUEUE,
    GPU_QUEUE,
    QUEUE_TAG,
    BrokerUnreachableError,
    check_reachable,
    worker_command,
)
from synth_pipelines.lines.datasets.sensors import PACKAGE_JOB
from synth_pipelines.lines.faces.sensors import REFILL_JOB, refill_run_config
from synth_pipelines.partitions import dataset_requests, face_buckets, partition_for_bucket
from tests.conftest import REGION, _pg_admin_connect, make_bucket
from tests.helpers import free_port, request, stop_process

pytestmark = pytest.mark.xdist_group("celery")

REPO = Path(__file__).resolve().parent.parent
DEPLOY_YAML = REPO / "deploy" / "dagster.yaml"
BROKER = "amqp://guest:guest@127.0.0.1:5672//"
BACKEND = "redis://127.0.0.1:6379/0"
WORKER_READY_TIMEOUT = 120
RUN_TIMEOUT = 300
PER_BUCKET = 3  # faces each bucket's refill adds


def _services_or_skip() -> None:
    try:
        check_reachable(BROKER, BACKEND, timeout=3)
    except BrokerUnreachableError as exc:
        pytest.skip(f"RabbitMQ or Redis not reachable here: {exc}")


@dataclass
class Cluster:
    """The engines of this module: the environment every process shares, the workers by name,
    the Dagster instance and the factory DB."""

    root: Path
    env: dict[str, str]
    instance: dg.DagsterInstance
    db: FactoryDatabase
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start_worker(self, name: str, queue: str = DEFAULT_QUEUE) -> subprocess.Popen:
        """A worker process on `queue`, once it says it is ready."""
        log = self.root / f"{name}.log"
        process = subprocess.Popen(
            worker_command(queue, name),
            cwd=REPO,
            env=self.env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + WORKER_READY_TIMEOUT
        while " ready." not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"worker {name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        self.workers[name] = process
        return process

    def launch(self, runs: list[dict], env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start `runs` (job, tags, run_config) in the background, each in its own process."""
        token = uuid.uuid4().hex[:8]
        spec, out = self.root / f"runs-{token}.json", self.root / f"result-{token}.json"
        spec.write_text(json.dumps(runs))
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.celery_runs", str(spec), str(out)],
            cwd=REPO,
            env=env or self.env,
            stdout=(self.root / f"runs-{token}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        process.result_path = out  # type: ignore[attr-defined]
        return process

    def wait(self, process: subprocess.Popen) -> list[dict]:
        """The results of launched runs, once they have all ended."""
        try:
            process.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        log = Path(str(process.result_path).replace("result-", "runs-")).with_suffix(".log")
        assert process.returncode == 0, log.read_text()[-4000:]
        return json.loads(process.result_path.read_text())  # type: ignore[attr-defined]

    def run(self, runs: list[dict], env: dict[str, str] | None = None) -> list[dict]:
        return self.wait(self.launch(runs, env))

    def step_workers(self, run_id: str) -> list[str]:
        """The Celery worker (hostname) of each step execution of the run, in order."""
        records = self.instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ENGINE_EVENT
        ).records
        workers = []
        for record in records:
            metadata = record.event_log_entry.dagster_event.event_specific_data.metadata
            if "Celery worker" in metadata:
                workers.append(metadata["Celery worker"].value)
        return workers


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
    # The Dagster instance on a database of its own; the factory DB in a schema of the session's.
    dagster_db = f"synth_celery_{uuid.uuid4().hex[:10]}"
    with _pg_admin_connect() as admin:
        admin.execute(f'CREATE DATABASE "{dagster_db}"')
    schema = f"celery_{uuid.uuid4().hex[:10]}"
    with _pg_admin_connect(make_url(pg_database).database) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    url = make_url(pg_database)
    aws = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(root / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(root / "no-aws-credentials"),
    }
    for name, value in aws.items():
        os.environ.setdefault(name, value)  # make_bucket below, in this process
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SYNTH_", "AWS_"))},
        **aws,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "SYNTH_HOME": str(root / "synth_home"),
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": url.host,
        "DAGSTER_PG_PORT": str(url.port),
        "DAGSTER_PG_USER": url.username,
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_DB": dagster_db,
        "SYNTH_DATABASE_URL": f"{pg_database}?options=-csearch_path%3D{schema}",
        "SYNTH_STORE": "s3",
        "SYNTH_S3_BUCKET": make_bucket(moto_endpoint),
        "SYNTH_S3_ENDPOINT_URL": moto_endpoint,
        "SYNTH_S3_REGION": REGION,
        "SYNTH_EXECUTOR": "celery",
        "SYNTH_CELERY_BROKER_URL": BROKER,
        "SYNTH_CELERY_BACKEND_URL": BACKEND,
        "SYNTH_FACE_SIZE": "64",
        "SYNTH_LABEL_SOURCE": "generator",
        "SYNTH_REFILL_WORKERS": "1",
        "SYNTH_TARGET_PER_BUCKET": "10",
    }
    db = FactoryDatabase(env["SYNTH_DATABASE_URL"])
    db.upgrade()
    old_pg = {k: os.environ.get(k) for k in env if k.startswith("DAGSTER_PG_")}
    os.environ.update({k: env[k] for k in old_pg})
    instance = dg.DagsterInstance.from_config(str(home))
    cluster = Cluster(root=root, env=env, instance=instance, db=db)
    try:
        _purge_queues()
        cluster.start_worker("default1")
        cluster.start_worker("default2")
        yield cluster
    finally:
        for process in cluster.workers.values():
            stop_process(process)
        instance.dispose()
        db.dispose()
        for name, value in old_pg.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        with _pg_admin_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{dagster_db}" WITH (FORCE)')


def _purge_queues() -> None:
    """No task left on the queues by an earlier session reaches these workers."""
    from celery import Celery

    app = Celery("purge", broker=BROKER)
    with app.connection_for_write() as connection, connection.channel() as channel:
        for queue in (DEFAULT_QUEUE, GPU_QUEUE):
            try:
                channel.queue_purge(queue)
            except Exception:  # not declared yet: nothing to purge
                channel = connection.channel()


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
