"""A tabular job whose chunks are split into shards, each a step of its own (SYNTH_TABULAR_SHARDS):
on a real Dagster instance, the same rows as the job made in one step, the steps and progress
the UI shows, nothing left behind, and a job that cannot run failed once with its reason."""

from __future__ import annotations

import dataclasses
import io

import dagster as dg
import pyarrow.parquet as pq
import pytest

from synth_pipelines.core.checks.names import TABULAR_UNIQUE
from synth_pipelines.core.errors import ConflictError
from synth_pipelines.core.tabular.jobs import (
    JobParams,
    confirm_job,
    create_job,
    get_job,
    record_chunk_done,
    retry_job,
    start_job,
)
from synth_pipelines.core.tabular.schema import TableSchema
from synth_pipelines.core.tabular.shards import plan_shards
from synth_pipelines.definitions import build_definitions
from synth_pipelines.lines.tabular.sensors import TABULAR_JOB
from synth_pipelines.resources.object_store import ObjectStoreResource
from synth_pipelines.settings import Settings
from tests.fitted_samples import fitted_settings_env, mixed_tables
from tests.launchpad import step_failure
from tests.test_tabular_jobs import SMALL, params


@pytest.fixture
def settings_env() -> dict[str, str]:
    return fitted_settings_env()  # the hashing embedder, one worker, a master key


def sharded(settings: Settings, shards: int) -> Settings:
    tabular = dataclasses.replace(settings.tabular, shards=shards)
    return dataclasses.replace(settings, tabular=tabular)


def store_of(settings: Settings):
    return ObjectStoreResource(backend="local", root=str(settings.store.root)).get_store()


def output(store, key: str):
    return pq.read_table(io.BytesIO(store.get_bytes(key)))


def run(defs: dg.Definitions, instance, job_id: str, config: dict | None = None):
    instance.add_dynamic_partitions("tabular_jobs", [job_id])
    ops = {"tabular_dataset": {"ops": {"tabular_plan": {"config": config or {}}}}}
    return defs.resolve_job_def(TABULAR_JOB).execute_in_process(
        partition_key=job_id, instance=instance, run_config={"ops": ops}, raise_on_error=False
    )


def test_the_plan_splits_every_chunk_once_into_contiguous_shards() -> None:
    job = JobParams(total_rows=2_050, chunk_size=100, max_workers=1, dedup_threshold=1, seed=0)
    plan = plan_shards("j", "r", job, 4)  # 21 chunks
    assert [(s.first_chunk, s.chunks) for s in plan] == [(0, 6), (6, 5), (11, 5), (16, 5)]
    assert sum(s.rows(job) for s in plan) == 2_050 and plan[-1].rows(job) == 450
    assert [s.chunks for s in plan_shards("j", "r", job, 50)] == [1] * 21
    assert plan[1].key == "tabular/j/shards/r/00001.parquet"
    with pytest.raises(ValueError, match="shards must be >= 1"):
        plan_shards("j", "r", job, 0)


def test_a_sharded_job_makes_the_rows_the_one_step_job_makes(settings, db, instance) -> None:
    schema = TableSchema.parse(SMALL)
    one = create_job(db, "orders", schema, "offline")
    three = create_job(db, "orders", schema, "offline")
    for job in (one, three):
        confirm_job(db, job.id, params(2_500, 500))  # 5 chunks; semantic dedup tops up

    single = build_definitions(settings).resolve_job_def(TABULAR_JOB)
    instance.add_dynamic_partitions("tabular_jobs", [one.id])
    assert single.execute_in_process(partition_key=one.id, instance=instance).success
    result = run(build_definitions(sharded(settings, 3)), instance, three.id)
    assert result.success

    # Dagster shows the plan, one step per shard and the assembling step.
    steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert steps == {
        "tabular_dataset.tabular_plan",
        *(f"tabular_dataset.tabular_shard[shard_{i}]" for i in range(3)),
        "tabular_dataset.tabular_assemble",
        "tabular_dataset_yaml_checks",  # the YAML checks run on it as on any tabular_dataset
    }
    store = store_of(settings)
    tables = [output(store, get_job(db, j.id).outputs["parquet"]) for j in (one, three)]
    assert tables[0].num_rows == 2_500 and tables[1].equals(tables[0])

    done = get_job(db, three.id)
    assert done.status == "completed" and done.completed_chunks == done.total_chunks >= 5
    assert done.rows_generated == get_job(db, one.id).rows_generated
    (event,) = result.get_asset_materialization_events()
    metadata = event.event_specific_data.materialization.metadata
    assert metadata["shards"].value == 3 and metadata["rows"].value == 2_500
    check = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("tabular_dataset"), TABULAR_UNIQUE), limit=1
    )
    assert check and check[0].status.value == "SUCCEEDED"
    # Neither the shards nor the values the steps handed each other are left in the store.
    assert list(store.list_keys(f"tabular/{three.id}/shards/")) == []
    assert list(store.list_keys(f"dagster/steps/{result.run_id}/")) == []


def test_run_config_reaches_every_shard(settings, db, instance) -> None:
    job = create_job(db, "orders", TableSchema.parse(SMALL), "offline")
    confirm_job(db, job.id, params(2_500, 500))
    result = run(build_definitions(sharded(settings, 2)), instance, job.id, {"total_rows": 1_200})
    assert result.success
    shards = [e for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]
    assert len(shards) == 5  # plan, 2 shards (3 chunks of 500: 2 + 1), assemble, YAML checks
    done = get_job(db, job.id)
    table = output(store_of(settings), done.outputs["parquet"])
    assert table.num_rows == 1_200


def test_run_config_the_job_cannot_hold_fails_it_in_the_plan_with_the_reason(
    settings, db, instance
) -> None:
    few = {
        "name": "few",
        "columns": [{"name": "id", "type": "integer", "unique": True, "min": 1, "max": 300}],
    }
    job = create_job(db, "few", TableSchema.parse(few), "offline")
    confirm_job(db, job.id, params(300, 100))
    result = run(build_definitions(sharded(settings, 4)), instance, job.id, {"total_rows": 1_000})
    assert not result.success
    failure = result.get_step_failure_events()[0]
    assert failure.step_key == "tabular_dataset.tabular_plan"
    assert "at most 300 distinct values, not 1000 rows" in step_failure(result)
    assert not any("tabular_shard" in (e.step_key or "") for e in result.all_events)
    failed = get_job(db, job.id)  # as a one-step run fails it: retryable, with the reason
    assert failed.status == "failed" and "at most 300 distinct values" in failed.error
    assert retry_job(db, job.id).status == "confirmed"


def test_a_sharded_job_that_fails_when_assembled_is_failed_with_its_reason_and_cleaned_up(
    settings, db, instance
) -> None:
    # Three distinct rows at most: the shards are made, then dedup cannot reach 100 rows.
    three = {"name": "three", "columns": [{"name": "c", "type": "category",
                                           "categories": ["a", "b", "c"]}]}  # fmt: skip
    job = create_job(db, "three", TableSchema.parse(three), "offline")
    confirm_job(db, job.id, params(100, 25))
    result = run(build_definitions(sharded(settings, 2)), instance, job.id)
    assert not result.success
    assert result.get_step_failure_events()[0].step_key == "tabular_dataset.tabular_assemble"
    failed = get_job(db, job.id)
    assert failed.status == "failed" and "only 3 distinct rows of 100" in failed.error
    assert list(store_of(settings).list_keys(f"tabular/{job.id}/shards/")) == []
    assert retry_job(db, job.id).status == "confirmed"


def test_a_shard_of_a_run_that_lost_the_job_stops(settings, db) -> None:
    job = create_job(db, "orders", TableSchema.parse(SMALL), "offline")
    confirm_job(db, job.id, params(1_000, 500))
    start_job(db, job.id, "run-b")
    record_chunk_done(db, job.id, "run-b", 500)
    assert get_job(db, job.id).completed_chunks == 1
    with pytest.raises(ConflictError, match="no longer run by run run-a"):
        record_chunk_done(db, job.id, "run-a", 500)
    assert get_job(db, job.id).rows_generated == 500


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the sharding is one path
def test_a_job_fitted_to_tables_joined_by_keys_is_made_whole_by_the_assembling_step(
    settings, db, instance
) -> None:
    from synth_pipelines.core.security.crypto import keyring_from_env
    from synth_pipelines.core.tabular.fitted.related_jobs import create_related_job

    samples = mixed_tables(seed=4, customers=300)
    files = [(frame.to_csv(index=False).encode(), f"{name}.csv") for name, frame in samples.items()]
    job = create_related_job(
        db, store_of(settings), keyring_from_env(), files,
        ["orders.customer_id=customers.customer_id"], owner="ada",
        max_bytes=settings.tabular.sample_max_bytes, holdout_share=0.5, min_category_count=5,
        rows=200, seed=1,
    )  # fmt: skip
    confirm_job(db, job.id, params(200, 100))
    result = run(build_definitions(sharded(settings, 3)), instance, job.id)
    assert result.success
    assert not any("tabular_shard" in (e.step_key or "") for e in result.all_events)
    done = get_job(db, job.id)
    tables = done.outputs["tables"]
    assert done.status == "completed" and set(tables) == {"customers", "orders"}
    customers = output(store_of(settings), tables["customers"]["parquet"])
    assert customers.num_rows == 200
