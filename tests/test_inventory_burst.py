"""The refill sensor's first burst, as `make ui` runs it: ten concurrent refills of every bucket,
each in its own process on one Dagster instance (SQLite, as `dagster dev` keeps it), with the
factory DB on SQLite and on PostgreSQL; then the nightly validation, then a delivery. Each run's
own near-duplicate check sees only the inventory as it was when the run started; the insert's
re-check against what is committed is what keeps the buckets' neighbours out (issue 21)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import dagster as dg
import numpy as np
import pytest

from synth_pipelines.core.delivery.requests import get_request
from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS
from synth_pipelines.core.faces.inventory import all_phashes, hamming_min, inventory_levels
from synth_pipelines.dbt_like_checks.validation import VALIDATION_JOB
from synth_pipelines.definitions import build_definitions
from synth_pipelines.settings import Settings
from tests.helpers import evaluate, request
from tests.test_datasets import package, tick
from tests.test_face_inventory import run_refill

PER_BUCKET = 40  # 400 simulated faces hold ~6 pairs within 4 bits of each other


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {"SYNTH_TARGET_PER_BUCKET": str(PER_BUCKET), "SYNTH_FACE_SIZE": "64"}


def refill_in_own_process(instance_ref, partition_key: str, run_config: dict) -> bool:
    """One refill run in a fresh process on the shared instance, as the daemon launches runs
    (one Dagster instance is not for concurrent runs in threads of one process)."""
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        defs = build_definitions(Settings.from_env())
        return run_refill(defs, instance, partition_key, run_config).success


def test_a_concurrent_refill_burst_passes_validation_and_delivers(settings, instance, db) -> None:
    defs = build_definitions(settings)
    burst = evaluate(defs.resolve_sensor_def("inventory_refill_sensor"), instance, defs)
    assert sorted(r.tags["synth/bucket"] for r in burst.run_requests) == sorted(ALL_BUCKET_KEYS)

    spawn = multiprocessing.get_context("spawn")  # the settings travel in the environment
    with ProcessPoolExecutor(len(burst.run_requests), mp_context=spawn) as pool:
        launched = [
            pool.submit(refill_in_own_process, instance.get_ref(), r.partition_key, r.run_config)
            for r in burst.run_requests
        ]
        assert all(run.result() for run in launched)
    runs = instance.get_runs(dg.RunsFilter(job_name="face_inventory_refill"))
    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * 10

    levels = inventory_levels(db)
    assert sum(levels.values()) >= 0.9 * PER_BUCKET * len(ALL_BUCKET_KEYS)
    hashes = all_phashes(db)
    closest = min(hamming_min(int(h), np.delete(hashes, i)) for i, h in enumerate(hashes))
    assert closest > settings.faces.phash_distance

    validation = defs.resolve_job_def(VALIDATION_JOB).execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert validation.success
    evaluations = validation.get_asset_check_evaluations()
    failed = [e.check_name for e in evaluations if not e.passed]
    assert failed == [] or all(
        e.severity == dg.AssetCheckSeverity.WARN for e in evaluations if not e.passed
    ), failed
    (near,) = [e for e in evaluations if e.check_name.endswith("near_duplicates")]
    assert near.passed, near.description

    # Nothing holds delivery: the check-failure sensor places no hold, a request is delivered.
    holds = evaluate(defs.resolve_sensor_def("check_failure_sensor"), instance, defs)
    assert not any(
        r.run_config["ops"]["apply_check_holds"]["config"]["place"]
        for r in holds.run_requests or []
    )
    request_id = request(db, {"female/adult": 5, "male/senior": 5})
    (run,) = tick(defs, instance).run_requests
    assert package(defs, instance, run.partition_key).success
    assert get_request(db, request_id).status == "ready"
