"""A cluster on real engines, shared by tests/test_celery_execution.py and benchmarks/scale.py:
Celery workers (synth_pipelines/execution.py's command) on RabbitMQ and Redis, the production
Dagster instance (deploy/dagster.yaml) on a PostgreSQL database of its own, the factory DB on
PostgreSQL and the object store on moto's S3 server; a benchmark adds a dagster daemon.

`open_cluster(...)` builds the environment every process shares and yields a `Cluster`; on exit
it stops the processes it started and drops the Dagster database. A benchmark runs on a RabbitMQ
vhost (`own_vhost`) and a Redis database (`free_redis_db`) of its own, so it never meets the
tasks of a test run on the broker's default vhost.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.execution import DEFAULT_QUEUE, GPU_QUEUE, worker_command
from tests.conftest import REGION, _pg_admin_connect, make_bucket
from tests.helpers import free_port, stop_process

REPO = Path(__file__).resolve().parent.parent
DEPLOY_YAML = REPO / "deploy" / "dagster.yaml"
# The tests' broker and backend: the local RabbitMQ and Redis by default; another vhost and
# Redis DB keep a test run apart from workers or tests already on the defaults.
BROKER = os.environ.get("SYNTH_TEST_CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
BACKEND = os.environ.get("SYNTH_TEST_CELERY_BACKEND_URL", "redis://127.0.0.1:6379/0")
WORKER_READY_TIMEOUT = 120
RUN_TIMEOUT = 300


@dataclass
class Cluster:
    """The engines: the environment every process shares, the workers by name, the Dagster
    instance and the factory DB."""

    root: Path
    env: dict[str, str]
    instance: dg.DagsterInstance
    db: FactoryDatabase
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    daemon: subprocess.Popen | None = None

    def start_workers(self, names: list[tuple[str, str]]) -> None:
        """Workers (name, queue), started together, once each says it is ready."""
        pending = {name: self.spawn_worker(name, queue) for name, queue in names}
        deadline = time.monotonic() + WORKER_READY_TIMEOUT
        while pending:
            for name, process in list(pending.items()):
                log = (self.root / f"{name}.log").read_text()
                if " ready." in log:
                    self.workers[name] = pending.pop(name)
                elif process.poll() is not None or time.monotonic() > deadline:
                    for other in pending.values():
                        other.kill()
                    raise AssertionError(f"worker {name} did not start:\n{log[-3000:]}")
            time.sleep(0.5)

    def spawn_worker(self, name: str, queue: str) -> subprocess.Popen:
        return subprocess.Popen(
            worker_command(queue, name),
            cwd=REPO,
            env=self.env,
            stdout=(self.root / f"{name}.log").open("w"),
            stderr=subprocess.STDOUT,
        )

    def start_daemon(self) -> None:
        """`dagster-daemon run` on the code location: sensors, the run queue, run launches."""
        self.daemon = subprocess.Popen(
            [sys.executable, "-m", "dagster._daemon", "run", "-m", "synth_pipelines.definitions"],
            cwd=REPO,
            env=self.env,
            stdout=(self.root / "daemon.log").open("w"),
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        """Stop the daemon (first: it launches runs) and the workers."""
        if self.daemon is not None:
            stop_process(self.daemon, grace=30)
            self.daemon = None
        for process in self.workers.values():
            stop_process(process)
        self.workers.clear()

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
        return [worker for _step, worker in self.workers_by_step(run_id)]

    def workers_by_step(self, run_id: str) -> list[tuple[str, str]]:
        """(step key, Celery worker hostname) of each step execution of the run, in order."""
        records = self.instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ENGINE_EVENT
        ).records
        workers = []
        for record in records:
            event = record.event_log_entry.dagster_event
            metadata = event.event_specific_data.metadata
            if "Celery worker" in metadata:
                workers.append((event.step_key, metadata["Celery worker"].value))
        return workers


@contextmanager
def open_cluster(
    root: Path,
    factory_url: str,
    s3_endpoint: str,
    *,
    broker: str = BROKER,
    backend: str = BACKEND,
    settings: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """The engines' environment under `root`: the Dagster instance on a new PostgreSQL database
    (dropped on exit), the factory DB at `factory_url` (migrated), a new bucket on the S3 server
    at `s3_endpoint`, Celery on `broker` and `backend`, and the SYNTH_* `settings`. Yields the
    Cluster; its workers and daemon, once started, are stopped on exit."""
    dagster_db = f"synth_celery_{uuid.uuid4().hex[:10]}"
    with _pg_admin_connect() as admin:
        admin.execute(f'CREATE DATABASE "{dagster_db}"')
        pg = admin.info  # the server's host, port and user, as the tests reach it
        pg_env = {
            "DAGSTER_PG_HOST": pg.host,
            "DAGSTER_PG_PORT": str(pg.port),
            "DAGSTER_PG_USER": pg.user,
            "DAGSTER_PG_PASSWORD": pg.password or "",
            "DAGSTER_PG_DB": dagster_db,
        }
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
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
        **pg_env,
        "SYNTH_DATABASE_URL": factory_url,
        "SYNTH_STORE": "s3",
        "SYNTH_S3_BUCKET": make_bucket(s3_endpoint),
        "SYNTH_S3_ENDPOINT_URL": s3_endpoint,
        "SYNTH_S3_REGION": REGION,
        "SYNTH_EXECUTOR": "celery",
        "SYNTH_CELERY_BROKER_URL": broker,
        "SYNTH_CELERY_BACKEND_URL": backend,
        **(settings or {}),
    }
    db = FactoryDatabase(factory_url)
    db.upgrade()
    old_pg = {k: os.environ.get(k) for k in env if k.startswith("DAGSTER_PG_")}
    os.environ.update({k: env[k] for k in old_pg})
    instance = dg.DagsterInstance.from_config(str(home))
    cluster = Cluster(root=root, env=env, instance=instance, db=db)
    try:
        yield cluster
    finally:
        cluster.stop()
        instance.dispose()
        db.dispose()
        for name, value in old_pg.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        with _pg_admin_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{dagster_db}" WITH (FORCE)')


def purge_queues(broker: str = BROKER) -> None:
    """No task left on the queues by an earlier session reaches these workers."""
    from celery import Celery

    app = Celery("purge", broker=broker)
    with app.connection_for_write() as connection, connection.channel() as channel:
        for queue in (DEFAULT_QUEUE, GPU_QUEUE):
            try:
                channel.queue_purge(queue)
            except Exception:  # not declared yet: nothing to purge
                channel = connection.channel()


@contextmanager
def own_vhost(name: str) -> Iterator[str]:
    """A RabbitMQ vhost `name` for guest, deleted on exit: its broker URL."""
    subprocess.run(["rabbitmqctl", "add_vhost", name], check=True, capture_output=True)
    try:
        subprocess.run(
            ["rabbitmqctl", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        subprocess.run(["rabbitmqctl", "delete_vhost", name], capture_output=True)


def free_redis_db(host: str = "127.0.0.1", port: int = 6379) -> int:
    """The highest-numbered Redis database with no key (0, the default, never): a backend's."""
    import redis

    client = redis.Redis(host=host, port=port)
    count = int(client.config_get("databases")["databases"])
    for number in range(count - 1, 0, -1):
        if redis.Redis(host=host, port=port, db=number).dbsize() == 0:
            return number
    raise RuntimeError(f"every Redis database on {host}:{port} holds keys")


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server in a process of its own (not sharing this one's GIL): its endpoint."""
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        import socket

        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        stop_process(process)
