"""deploy/dagster.yaml is a working production instance, proven against the local PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import make_url

from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.definitions import build_resources
from synth_pipelines.lines.faces.assets import build_face_inventory
from synth_pipelines.lines.faces.sensors import refill_run_config
from synth_pipelines.partitions import partition_for_bucket
from synth_pipelines.settings import Settings

DEPLOY_YAML = Path(__file__).parent.parent / "deploy" / "dagster.yaml"


@pytest.fixture
def production_instance(pg_database, synth_home, tmp_path, monkeypatch):
    url = make_url(pg_database)
    monkeypatch.setenv("DAGSTER_PG_HOST", url.host)
    monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port))
    monkeypatch.setenv("DAGSTER_PG_USER", url.username)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    monkeypatch.setenv("DAGSTER_PG_DB", url.database)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    yield instance
    instance.dispose()


def test_deploy_yaml_runs_a_gpu_pool_materialization_on_postgres(
    production_instance, pg_database, monkeypatch
) -> None:
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    instance = production_instance
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)

    monkeypatch.setenv("SYNTH_DATABASE_URL", pg_database)
    monkeypatch.setenv("SYNTH_LABEL_SOURCE", "generator")
    monkeypatch.setenv("SYNTH_FACE_SIZE", "128")
    settings = Settings.from_env()
    # The face asset as it is defined for a GPU generator: it must take a `gpu` pool slot.
    asset = build_face_inventory(settings, pool="gpu")
    result = dg.materialize(
        [asset],
        instance=instance,
        resources=build_resources(settings),
        partition_key=str(partition_for_bucket(Bucket("female", "teen"))),
        run_config=refill_run_config(2),
    )
    assert result.success
    record = instance.get_latest_materialization_event(dg.AssetKey("face_inventory"))
    assert record is not None
    assert record.asset_materialization.metadata["added"].value == 2
    assert instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS
    # The pools config gave the `gpu` pool its one slot when the step claimed it.
    assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1
