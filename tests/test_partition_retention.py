"""Dynamic partitions stay bounded: partition_retention_job removes the partitions of retired
keys (expired requests, completed jobs and image sets, revoked personas and subjects) older than
SYNTH_PARTITION_RETENTION_DAYS, on a real Dagster instance, with the factory DB on SQLite and on
PostgreSQL; the runs and materializations of those partitions stay, and no sensor adds a retired
key back, from its own cursor or from an empty one."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg
import pytest

from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.storage.models import (
    DatasetRequest,
    ImageSet,
    Persona,
    PersonaSource,
    Subject,
    TabularJob,
    new_id,
)
from synth_pipelines.core.tabular.jobs import JobParams, confirm_job, create_job
from synth_pipelines.core.tabular.schema import TableSchema
from synth_pipelines.definitions import RETAINED, build_definitions
from synth_pipelines.in_process import evaluate_sensor
from synth_pipelines.lines.datasets.sensors import DATASET_REQUEST_SENSOR
from synth_pipelines.lines.flux.sensors import SUBJECT_SENSOR
from synth_pipelines.lines.imagesets.sensors import IMAGE_SET_SENSOR
from synth_pipelines.lines.personas.sensors import PERSONA_SOURCE_SENSOR
from synth_pipelines.lines.retention import RETENTION_JOB, RETENTION_SCHEDULE
from synth_pipelines.lines.tabular.sensors import TABULAR_JOB_SENSOR
from synth_pipelines.partitions import (
    dataset_requests,
    image_sets,
    personas,
    subjects,
    tabular_jobs,
)
from tests.helpers import request
from tests.launchpad import step_failure

OLD = timedelta(days=40)  # past the default retention of 30 days
RECENT = timedelta(days=2)
SCHEMA = TableSchema.parse(
    {"name": "t", "columns": [{"name": "id", "type": "integer", "semantic_type": "id"}]}
)


# --- rows in each line's states, as its core writes them -----------------------------------


def dataset_request(db, status: str, age: timedelta = timedelta(0)) -> str:
    key = request(db, {"female/adult": 1})
    with db.session() as session:
        row = session.get(DatasetRequest, key)
        row.status = status
        if status in ("ready", "expired"):
            row.expires_at = utcnow() - age
    return key


def tabular_job(db, status: str, age: timedelta = timedelta(0)) -> str:
    job = create_job(db, "ids", SCHEMA, "test")
    confirm_job(db, job.id, JobParams(10, 10, 1, 1.0, 1))
    with db.session() as session:
        row = session.get(TabularJob, job.id)
        row.status = status
        if status in ("completed", "failed"):
            row.completed_at = utcnow() - age
    return job.id


def persona(db, status: str, age: timedelta = timedelta(0)) -> str:
    key = new_id()
    with db.session() as session:
        session.add(Persona(id=key, owner="alice", status=status))
        session.add(
            PersonaSource(
                persona_id=key,
                format="whatsapp",
                object_key=f"personas/{key}/sources/1.enc",
                size_bytes=1,
                messages=1,
                persona_messages=1,
                uploaded_by="alice",
            )
        )
        if status == "revoked":
            session.flush()
            session.get(Persona, key).revoked_at = utcnow() - age
    return key


def subject(db, status: str, age: timedelta = timedelta(0)) -> str:
    key = new_id()
    with db.session() as session:
        session.add(Subject(id=key, owner="alice", status=status, trigger="sks"))
        if status == "revoked":
            session.flush()
            session.get(Subject, key).revoked_at = utcnow() - age
    return key


def image_set(db, status: str, age: timedelta = timedelta(0)) -> str:
    key = new_id()
    with db.session() as session:
        session.add(
            ImageSet(
                id=key,
                name="set",
                source="/data/real",
                source_kind="folder",
                status=status,
                params={},
                updated_at=utcnow() - age,
            )
        )
    return key


def retire(db, line: str, key: str, age: timedelta) -> None:
    """Move `key` of `line` on to its retired state, `age` ago (as expiry, completion,
    revocation or export would)."""
    model, fields = {
        "dataset_requests": (DatasetRequest, {"status": "expired", "expires_at": utcnow() - age}),
        "tabular_jobs": (TabularJob, {"status": "completed", "completed_at": utcnow() - age}),
        "personas": (Persona, {"status": "revoked", "revoked_at": utcnow() - age}),
        "subjects": (Subject, {"status": "revoked", "revoked_at": utcnow() - age}),
        "image_sets": (ImageSet, {"status": "ready", "updated_at": utcnow() - age}),
    }[line]
    with db.session() as session:
        row = session.get(model, key)
        for name, value in fields.items():
            setattr(row, name, value)


# --- Dagster side -------------------------------------------------------------------------

PARTITIONS = {d.name: d for d in (dataset_requests, tabular_jobs, personas, subjects, image_sets)}


def _probe(partitions_def: dg.DynamicPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(name=f"probe_{partitions_def.name}", partitions_def=partitions_def)
    def probe(context: dg.AssetExecutionContext) -> None:
        context.add_output_metadata({"key": context.partition_key})

    return probe


PROBES = {name: _probe(d) for name, d in PARTITIONS.items()}


def run_for(
    instance: dg.DagsterInstance, line: str, key: str, tags: dict[str, str] | None = None
) -> str:
    """A real run of partition `key` (a materialization of it, with the `tags` of the run
    request it answers): the history retention keeps."""
    result = dg.materialize([PROBES[line]], partition_key=key, instance=instance, tags=tags)
    assert result.success
    return result.run_id


def history(instance: dg.DagsterInstance, line: str, key: str) -> tuple[list[str], int]:
    """The ids of the runs of partition `key` and how many materializations it has."""
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": key}))
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=PROBES[line].key, asset_partitions=[key]), limit=10
    ).records
    return [run.run_id for run in runs], len(records)


def apply_partition_requests(instance: dg.DagsterInstance, tick: dg.SensorResult) -> None:
    """What the daemon does with a tick's dynamic partition requests."""
    for change in tick.dynamic_partitions_requests or []:
        if isinstance(change, dg.DeleteDynamicPartitionsRequest):
            for key in change.partition_keys:
                instance.delete_dynamic_partition(change.partitions_def_name, key)
        else:
            instance.add_dynamic_partitions(change.partitions_def_name, change.partition_keys)


def added_keys(tick: dg.SensorResult) -> set[str]:
    return {
        key
        for change in tick.dynamic_partitions_requests or []
        if isinstance(change, dg.AddDynamicPartitionsRequest)
        for key in change.partition_keys
    }


def run_retention(defs, instance, days: int | None = None) -> dict[str, dict]:
    """One run of partition_retention_job; each op's output metadata, by partitions def."""
    config = {} if days is None else {
        "ops": {f"retire_{name}": {"config": {"days": days}} for name in PARTITIONS}
    }  # fmt: skip
    result = defs.resolve_job_def(RETENTION_JOB).execute_in_process(
        instance=instance, run_config=config
    )
    assert result.success
    metadata = {}
    for event in result.all_node_events:
        if event.event_type == dg.DagsterEventType.STEP_OUTPUT:
            values = {k: v.value for k, v in event.step_output_data.metadata.items()}
            metadata[values["partitions_def"]] = values
    return metadata


@pytest.fixture
def defs(settings) -> dg.Definitions:
    return build_definitions(settings)


# --- the job in the code location ---------------------------------------------------------


def test_the_job_and_its_schedule_cover_every_dynamic_partitions_definition(defs) -> None:
    job = defs.resolve_job_def(RETENTION_JOB)
    assert sorted(node.name for node in job.nodes) == sorted(f"retire_{n}" for n in PARTITIONS)
    assert sorted(line.RETENTION.name for line in RETAINED) == sorted(PARTITIONS)
    schedule = defs.resolve_schedule_def(RETENTION_SCHEDULE)
    assert schedule.job_name == RETENTION_JOB
    assert schedule.cron_schedule == "45 4 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    # Every partitions definition the code location uses has a retention op: a new line with a
    # dynamic partitions definition and no Retention fails here.
    used = {
        asset.partitions_def.name
        for asset in defs.resolve_all_asset_specs()
        if isinstance(asset.partitions_def, dg.DynamicPartitionsDefinition)
    }
    assert used == set(PARTITIONS)


# --- what goes and what stays ---------------------------------------------------------------


def test_retired_partitions_go_the_rest_stay_and_the_history_is_kept(defs, db, instance) -> None:
    retired = {
        "dataset_requests": [dataset_request(db, "expired", OLD)],
        "tabular_jobs": [tabular_job(db, "completed", OLD)],
        "personas": [persona(db, "revoked", RECENT)],  # revocations go at any age
        "subjects": [subject(db, "revoked", RECENT)],
        "image_sets": [image_set(db, "ready", OLD)],
    }
    kept = {
        "dataset_requests": [
            dataset_request(db, "expired", RECENT),  # expired, but not long enough ago
            dataset_request(db, "ready", -RECENT),  # its link still works
            dataset_request(db, "failed"),  # may be retried
            dataset_request(db, "backordered"),
            dataset_request(db, "pending"),
        ],
        "tabular_jobs": [
            tabular_job(db, "completed", RECENT),
            tabular_job(db, "failed", OLD),  # may be retried
            tabular_job(db, "confirmed"),
        ],
        "personas": [persona(db, "active")],
        "subjects": [subject(db, "ready"), subject(db, "failed"), subject(db, "pending")],
        "image_sets": [
            image_set(db, "ready", RECENT),
            image_set(db, "failed", OLD),
            image_set(db, "pending", OLD),
        ],
    }
    unknown = dataset_request(db, "expired", OLD)  # retired, but never had a partition
    runs = {}
    for line in PARTITIONS:
        instance.add_dynamic_partitions(line, retired[line] + kept[line])
        for key in retired[line]:
            runs[key] = run_for(instance, line, key)

    metadata = run_retention(defs, instance)

    for line in PARTITIONS:
        assert sorted(instance.get_dynamic_partitions(line)) == sorted(kept[line]), line
        assert metadata[line]["removed"] == len(retired[line]), line
        assert metadata[line]["kept"] == len(kept[line]), line
        assert metadata[line]["removed_keys"] == sorted(retired[line]), line
        for key in retired[line]:
            # Deleting a partition key deletes neither its runs nor its materializations.
            assert history(instance, line, key) == ([runs[key]], 1), key
    assert unknown not in instance.get_dynamic_partitions("dataset_requests")
    # A second pass finds nothing more to remove.
    again = run_retention(defs, instance)
    assert {line: m["removed"] for line, m in again.items()} == dict.fromkeys(PARTITIONS, 0)


def test_the_age_comes_from_the_run_config_and_the_setting(
    defs, db, instance, monkeypatch, settings
) -> None:
    young = dataset_request(db, "expired", RECENT)
    done = tabular_job(db, "completed", RECENT)
    instance.add_dynamic_partitions("dataset_requests", [young])
    instance.add_dynamic_partitions("tabular_jobs", [done])
    assert run_retention(defs, instance)["dataset_requests"]["removed"] == 0
    # The launchpad's knob: days=1 for this run only.
    metadata = run_retention(defs, instance, days=1)
    assert metadata["dataset_requests"]["removed_keys"] == [young]
    assert metadata["tabular_jobs"]["removed_keys"] == [done]

    # The setting is the knob's default.
    later = dataset_request(db, "expired", timedelta(days=4))
    instance.add_dynamic_partitions("dataset_requests", [later])
    monkeypatch.setenv("SYNTH_PARTITION_RETENTION_DAYS", "3")
    three_days = build_definitions(type(settings).from_env())
    assert run_retention(three_days, instance)["dataset_requests"]["removed_keys"] == [later]


def test_a_bad_age_is_refused_before_any_partition_goes(defs, db, instance) -> None:
    key = dataset_request(db, "expired", OLD)
    instance.add_dynamic_partitions("dataset_requests", [key])
    refused = defs.resolve_job_def(RETENTION_JOB).execute_in_process(
        instance=instance,
        run_config={"ops": {"retire_dataset_requests": {"config": {"days": -1}}}},
        raise_on_error=False,
    )
    assert not refused.success
    assert "days" in step_failure(refused)
    assert "greater than or equal to 0" in step_failure(refused)
    assert instance.get_dynamic_partitions("dataset_requests") == [key]


# --- the sensors never add a retired key back --------------------------------------------


@dataclass(frozen=True)
class Line:
    partitions: str
    sensor: str
    live: Callable  # a row the sensor runs: (db) -> key
    retired_age: timedelta


LINES = [
    Line(
        "dataset_requests", DATASET_REQUEST_SENSOR, lambda db: dataset_request(db, "pending"), OLD
    ),
    Line("tabular_jobs", TABULAR_JOB_SENSOR, lambda db: tabular_job(db, "confirmed"), OLD),
    Line("personas", PERSONA_SOURCE_SENSOR, lambda db: persona(db, "active"), RECENT),
    Line("subjects", SUBJECT_SENSOR, lambda db: subject(db, "pending"), RECENT),
    Line("image_sets", IMAGE_SET_SENSOR, lambda db: image_set(db, "pending"), OLD),
]


@pytest.mark.parametrize("line", LINES, ids=[line.sensor for line in LINES])
def test_the_sensor_never_adds_a_retired_key_back(defs, db, instance, line: Line) -> None:
    # The sensor adds the partition of a key waiting for its run, and the run happens.
    key = line.live(db)
    first = evaluate_sensor(defs, instance, line.sensor)
    assert added_keys(first) == {key}
    assert [run.partition_key for run in first.run_requests] == [key]
    apply_partition_requests(instance, first)
    run_id = run_for(instance, line.partitions, key, dict(first.run_requests[0].tags))

    # The key retires; retention removes its partition.
    retire(db, line.partitions, key, line.retired_age)
    assert run_retention(defs, instance)[line.partitions]["removed_keys"] == [key]
    assert key not in instance.get_dynamic_partitions(line.partitions)
    # Nothing to do: the sensor does not claim it never saw a key.
    idle = evaluate_sensor(defs, instance, line.sensor, first.cursor)
    assert not idle.run_requests and not added_keys(idle)
    assert idle.skip_reason.skip_message.startswith("nothing new: earlier "), idle.skip_reason

    # A newer key is still picked up beside it: the sensor is live, and it adds only that one,
    # from its own cursor and from an empty one (a reset sensor).
    newer = line.live(db)
    for cursor in (first.cursor, None):
        tick = evaluate_sensor(defs, instance, line.sensor, cursor)
        assert added_keys(tick) == {newer}, cursor
        assert [run.partition_key for run in tick.run_requests] == [newer], cursor
        apply_partition_requests(instance, tick)
        instance.delete_dynamic_partition(line.partitions, newer)  # as if never added
    assert key not in instance.get_dynamic_partitions(line.partitions)
    assert history(instance, line.partitions, key) == ([run_id], 1)
