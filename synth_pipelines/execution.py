"""Where the lines' runs execute their steps: the executor SYNTH_EXECUTOR picks, and the Celery
configuration that the executor, the workers (`make workers`), the tests and the README share.

`in_process` (the default) runs each run's steps in the run's own process, as always. `celery`
makes each step a task on the broker (RabbitMQ), picked up by a Celery worker process that
listens on the step's queue, with the step's events back through the result backend (Redis):

- queue `default`: every step without a queue of its own;
- queue `gpu`: the steps in the instance's `gpu` pool (persona adapters, Flux LoRAs, diffusion
  and GAN generation; `GPU_STEP_TAGS`), for workers on GPU nodes.

The `gpu` pool's limit still holds across workers: the executor claims the step's pool slot in
the instance (PostgreSQL) before it submits the task, as the in-process executor does. A step
is acknowledged only once it has finished (`task_acks_late`), so when a worker dies mid-step the
broker hands the step to another worker; the steps are idempotent per run (a refill resumes its
batch, a package keeps its reservations), so nothing is lost or done twice.

dagster-celery is imported only when the celery executor is chosen.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dagster as dg

from synth_pipelines.core.errors import SynthError
from synth_pipelines.settings import ExecutionSettings, Settings

QUEUE_TAG = "dagster-celery/queue"  # the op tag dagster-celery routes a step by
DEFAULT_QUEUE = "default"
GPU_QUEUE = "gpu"
QUEUES = (DEFAULT_QUEUE, GPU_QUEUE)
# On every step in the `gpu` pool: its task goes to the gpu queue (ignored in process).
GPU_STEP_TAGS = {QUEUE_TAG: GPU_QUEUE}
BROKER_ENV = "SYNTH_CELERY_BROKER_URL"
BACKEND_ENV = "SYNTH_CELERY_BACKEND_URL"
# `celery -A` target: the worker's app (synth_pipelines/celery_worker.py).
WORKER_APP = "synth_pipelines.celery_worker"


class BrokerUnreachableError(SynthError):
    """The Celery broker or result backend does not answer: no step was submitted."""


def celery_options(execution: ExecutionSettings) -> dict[str, Any]:
    """The Celery app's settings beyond the URLs, the same for the executor and the workers."""
    return {
        "task_default_queue": DEFAULT_QUEUE,
        # Acknowledged once the step has finished: a worker that dies mid-step leaves its step
        # on the broker for another worker (a solo worker's death closes its connection).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One step at a time per worker process: no step waits behind another one's prefetch.
        "worker_prefetch_multiplier": 1,
        "broker_connection_timeout": execution.celery_connect_timeout,
        "broker_transport_options": {"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
        "result_backend_transport_options": {
            "socket_connect_timeout": execution.celery_connect_timeout
        },
        "redis_socket_connect_timeout": execution.celery_connect_timeout,
    }


def _url_source(env: str, value: str, environ: Mapping[str, str]) -> str | dict[str, str]:
    """The URL as executor config: read from `env` at run time when it is set (it may hold a
    password, which should not land in the job's config), otherwise the default literal."""
    return {"env": env} if environ.get(env) else value


def executor_config(
    execution: ExecutionSettings, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The celery executor's config for `execution` (the workers load the same values)."""
    environ = os.environ if environ is None else environ
    return {
        "broker": _url_source(BROKER_ENV, execution.celery_broker_url, environ),
        "backend": _url_source(BACKEND_ENV, execution.celery_backend_url, environ),
        "config_source": celery_options(execution),
    }


def redacted(url: str) -> str:
    """`url` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def check_reachable(broker: str, backend: str, timeout: float) -> None:
    """Connect to the broker and the result backend once; a BrokerUnreachableError naming the
    one that does not answer (its URL without the password) and what it answered."""
    from celery import Celery

    app = Celery("synth-check", broker=broker, backend=backend)
    app.conf.broker_connection_timeout = timeout
    app.conf.redis_socket_connect_timeout = timeout
    app.conf.redis_socket_timeout = timeout
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:  # kombu wraps socket errors in several types
        raise BrokerUnreachableError(
            f"the Celery broker at {redacted(broker)} is unreachable ({exc}); no step was "
            f"submitted: start it, or point {BROKER_ENV} at one"
        ) from None
    try:
        client = getattr(app.backend, "client", None)
        if client is not None:
            client.ping()  # Redis
    except Exception as exc:
        raise BrokerUnreachableError(
            f"the Celery result backend at {redacted(backend)} is unreachable ({exc}); no step "
            f"was submitted: start it, or point {BACKEND_ENV} at one"
        ) from None


def celery_executor(execution: ExecutionSettings) -> dg.ExecutorDefinition:
    """dagster-celery's executor, configured from `execution`, that first checks the broker and
    the backend: a run whose broker is down fails before any step starts, naming it."""
    from dagster_celery import celery_executor as base
    from dagster_celery.executor import CeleryExecutor

    class CheckedCeleryExecutor(CeleryExecutor):
        def execute(self, plan_context, execution_plan):
            check_reachable(self.broker, self.backend, execution.celery_connect_timeout)
            yield from super().execute(plan_context, execution_plan)

    def create(init_context):
        inner = base.executor_creation_fn(init_context)
        return CheckedCeleryExecutor(
            retries=inner.retries,
            broker=inner.broker,
            backend=inner.backend,
            include=inner.include,
            config_source=vars(inner.config_source),
        )

    checked = dg.ExecutorDefinition(
        name="celery",
        config_schema=base.config_schema,
        requirements=dg.multiple_process_executor_requirements(),
        executor_creation_fn=create,
        description="Each step a Celery task (RabbitMQ broker, Redis results); see execution.py.",
    )
    return checked.configured(executor_config(execution), name="synth_celery")


def executor_for(settings: Settings) -> dg.ExecutorDefinition:
    """The executor of the lines' jobs for `settings.execution.executor`."""
    if settings.execution.executor == "celery":
        return celery_executor(settings.execution)
    return dg.in_process_executor


def worker_app(settings: Settings | None = None):
    """The Celery app a worker runs, with dagster-celery's step task, on the same broker,
    backend and options as the executor."""
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    execution = (settings or Settings.from_env()).execution
    app = make_app(
        {
            "broker": execution.celery_broker_url,
            "backend": execution.celery_backend_url,
            "include": [],
            "config_source": celery_options(execution),
        }
    )
    app.conf.update(celery_options(execution))
    create_task(app)
    return app


def worker_command(queue: str, name: str, loglevel: str = "INFO") -> list[str]:
    """The argv of one worker process listening on `queue`: one step at a time, in the worker's
    own process (`--pool solo`), so a worker's death ends its step and frees it for another."""
    if queue not in QUEUES:
        raise SynthError(f"unknown queue {queue!r}: the queues are {', '.join(QUEUES)}")
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        WORKER_APP,
        "worker",
        "--queues",
        queue,
        "--hostname",
        f"{name}@%h",
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "--loglevel",
        loglevel,
        "--without-gossip",
        "--without-mingle",
    ]


def worker_names(default: int, gpu: int) -> list[tuple[str, str]]:
    """(queue, name) of `default` workers on the default queue and `gpu` on the gpu queue."""
    return [(DEFAULT_QUEUE, f"default{i}") for i in range(1, default + 1)] + [
        (GPU_QUEUE, f"gpu{i}") for i in range(1, gpu + 1)
    ]


def run_workers(default: int, gpu: int, argv_for=worker_command) -> int:
    """Start the workers and wait: Ctrl-C (or SIGTERM) stops them all; one exiting stops the
    rest. Returns the first exit status."""
    names = worker_names(default, gpu)
    if not names:
        raise SynthError("no workers asked for: --default and --gpu are both 0")
    processes = [subprocess.Popen(argv_for(queue, name)) for queue, name in names]
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    status = 0
    try:
        while not stopping:
            exited = [p for p in processes if p.poll() is not None]
            if exited:
                status = exited[0].returncode
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()  # a warm shutdown: the current step finishes first
        for process in processes:
            process.wait()
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m synth_pipelines.execution",
        description="Celery workers for SYNTH_EXECUTOR=celery, on SYNTH_CELERY_BROKER_URL.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    workers = sub.add_parser("workers", help="start workers on the default and gpu queues")
    workers.add_argument("--default", type=int, default=2, help="workers on the default queue")
    workers.add_argument("--gpu", type=int, default=1, help="workers on the gpu queue")
    args = parser.parse_args(argv)
    execution = Settings.from_env().execution
    check_reachable(
        execution.celery_broker_url, execution.celery_backend_url, execution.celery_connect_timeout
    )
    return run_workers(args.default, args.gpu)


if __name__ == "__main__":
    sys.exit(main())
