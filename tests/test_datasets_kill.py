"""A packaging process killed with SIGKILL mid-run: its reservations come back, a retry delivers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
from sqlalchemy import func, select

from synth_pipelines.core.delivery.requests import create_request, get_request, retry_request
from synth_pipelines.core.delivery.spec import DatasetSpec
from synth_pipelines.core.delivery.status import effective_status
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.faces.inventory import inventory_levels
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import Face
from synth_pipelines.definitions import build_definitions
from synth_pipelines.lines.datasets.sensors import PACKAGE_JOB
from synth_pipelines.lines.faces.sensors import REFILL_JOB, refill_run_config
from synth_pipelines.partitions import dataset_requests, partition_for_bucket
from synth_pipelines.settings import Settings

REPO = Path(__file__).parent.parent
LEASE = 3


def test_killed_packaging_run_gives_its_faces_back(synth_home, database_url, monkeypatch):
    monkeypatch.setenv("SYNTH_DATABASE_URL", database_url)
    monkeypatch.setenv("SYNTH_FACE_SIZE", "64")
    monkeypatch.setenv("SYNTH_RESERVATION_LEASE_SECONDS", str(LEASE))
    settings = Settings.from_env()
    defs = build_definitions(settings)
    db = FactoryDatabase(settings.database_url)
    db.upgrade()
    with dg.DagsterInstance.get() as instance:
        defs.resolve_job_def(REFILL_JOB).execute_in_process(
            partition_key=str(partition_for_bucket(Bucket("female", "adult"))),
            run_config=refill_run_config(150),
            instance=instance,
        )
        # Upscaling every face to 512 px makes packaging take long enough to kill it mid-way.
        spec = DatasetSpec.parse({"buckets": {"female/adult": 150}, "image_size": 512}, 10_000)
        request_id = create_request(db, spec).id
        instance.add_dynamic_partitions(dataset_requests.name, [request_id])

        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster"),
                "job",
                "execute",
                "-m",
                "synth_pipelines.definitions",
                "-j",
                PACKAGE_JOB,
                "--tags",
                json.dumps({"dagster/partition": request_id}),
            ],
            cwd=REPO,
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while get_request(db, request_id).status != "packaging":
            assert process.poll() is None, "packaging finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

        with db.session() as session:
            reserved = session.scalar(select(func.count()).where(Face.status == "reserved"))
        assert reserved == 150
        store = defs.resources["object_store"].get_store()
        assert list(store.list_keys(f"datasets/{request_id}/")) == []  # nothing partial

        time.sleep(LEASE + 0.5)
        assert inventory_levels(db)["female/adult"] == 150
        assert effective_status(get_request(db, request_id)) == "failed"
        retry_request(db, request_id)
        result = defs.resolve_job_def(PACKAGE_JOB).execute_in_process(
            partition_key=request_id, instance=instance
        )
        assert result.success
    ready = get_request(db, request_id)
    assert ready.status == "ready"
    assert ready.attempts == 2
    with db.session() as session:
        delivered = session.scalar(select(func.count()).where(Face.status == "delivered"))
    assert delivered == 150
