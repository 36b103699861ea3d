"""Plain helpers that several test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from synth_pipelines.core.delivery.requests import create_request
from synth_pipelines.core.delivery.spec import DatasetSpec
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.storage.object_store import LocalObjectStore, ObjectStore
from synth_pipelines.in_process import evaluate_sensor
from synth_pipelines.lines.faces.sensors import REFILL_JOB, refill_run_config
from synth_pipelines.partitions import partition_for_bucket


def local_or_s3_store(
    request: pytest.FixtureRequest, tmp_path: Path, **s3_options: Any
) -> ObjectStore:
    """The object store for a `store` fixture with params=["local", "s3"]: a local directory, or a
    new bucket on moto's S3 server with fake AWS credentials (`s3_options` go to S3ObjectStore)."""
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    from synth_pipelines.core.storage.s3_object_store import S3ObjectStore
    from tests.conftest import REGION, make_bucket

    request.getfixturevalue("aws_credentials")
    endpoint = request.getfixturevalue("moto_endpoint")
    return S3ObjectStore(
        make_bucket(endpoint), endpoint_url=endpoint, region_name=REGION, **s3_options
    )


def stop_process(process: subprocess.Popen, grace: float = 10) -> None:
    """Terminate `process` (a server), and kill it if it has not exited after `grace` s."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def auth(token: str) -> dict[str, str]:
    """The Authorization header for an API key."""
    return {"Authorization": f"Bearer {token}"}


def evaluate(sensor, instance, defs, cursor=None) -> dg.SensorResult:
    """One tick of `sensor` from `defs` on `instance`, in process."""
    return evaluate_sensor(defs, instance, sensor, cursor)


def refill(defs, instance, bucket: Bucket, count: int) -> None:
    """Seed the inventory: one refill run of `count` faces into `bucket`, which must succeed."""
    result = defs.resolve_job_def(REFILL_JOB).execute_in_process(
        partition_key=str(partition_for_bucket(bucket)),
        run_config=refill_run_config(count),
        instance=instance,
    )
    assert result.success


def request(db, buckets: dict[str, int], **spec) -> str:
    """A new dataset request for `buckets` (counts by bucket key); its id."""
    return create_request(db, DatasetSpec.parse({"buckets": buckets, **spec}, 10_000)).id


def check_results(instance: dg.DagsterInstance, run_id: str) -> dict[str, Any]:
    """The asset check evaluations of run `run_id`, by check name."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    return {
        r.event_log_entry.dagster_event.event_specific_data.check_name: (
            r.event_log_entry.dagster_event.event_specific_data
        )
        for r in records
    }
