"""Sensors under a backlog: at most SYNTH_SENSOR_MAX_RUNS_PER_TICK runs a tick, oldest first,
nothing picked twice nor starved, and a cursor that stays bounded as the backlog drains."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg
import pytest
from sqlalchemy import update

from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.delivery.requests import retry_request
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.storage.models import DatasetRequest, TabularJob
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import evaluate_sensor
from synth_pipelines.lines.datasets.sensors import (
    DATASET_REQUEST_SENSOR,
    MARK_GRACE,
    RequestCursor,
    next_requests,
)
from synth_pipelines.lines.tabular.sensors import TABULAR_JOB_SENSOR
from synth_pipelines.partitions import dataset_requests
from tests.helpers import refill, request
from tests.test_partition_retention import tabular_job

CAP = 100
FEMALE_ADULT = Bucket("female", "adult")


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {
        "SYNTH_SENSOR_MAX_RUNS_PER_TICK": str(CAP),
        "SYNTH_TARGET_PER_BUCKET": "4",
        "SYNTH_FACE_SIZE": "64",
    }


@pytest.fixture
def defs(settings) -> dg.Definitions:
    return build_definitions(settings)


def backlog(db, count: int, age: timedelta = timedelta(hours=1)) -> list[str]:
    """`count` new requests, made one second apart from `age` ago: their ids, oldest first."""
    ids = [request(db, {"female/adult": 1}) for _ in range(count)]
    start = utcnow() - age
    with db.session() as session:
        for n, key in enumerate(ids):
            session.execute(
                update(DatasetRequest)
                .where(DatasetRequest.id == key)
                .values(created_at=start + timedelta(seconds=n))
            )
    return ids


def tick(defs, instance, cursor: str | None) -> dg.SensorResult:
    result = evaluate_sensor(defs, instance, DATASET_REQUEST_SENSOR, cursor)
    for partitions_request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(dataset_requests.name, partitions_request.partition_keys)
    return result


def drain(defs, instance, cursor: str | None = None, ticks: int = 10):
    """Tick until the sensor skips: the runs of each tick, and the last result."""
    runs: list[list[dg.RunRequest]] = []
    for _ in range(ticks):
        result = tick(defs, instance, cursor)
        cursor = result.cursor
        if not result.run_requests:
            return runs, result
        runs.append(list(result.run_requests))
    raise AssertionError(f"still requesting runs after {ticks} ticks")


def test_a_backlog_drains_over_capped_ticks_oldest_first(defs, instance, db) -> None:
    ids = backlog(db, 250)
    runs, idle = drain(defs, instance)
    assert [len(batch) for batch in runs] == [100, 100, 50]
    keys = [run.run_key for batch in runs for run in batch]
    assert keys == [f"{key}:0" for key in ids]  # each once, oldest first
    assert idle.skip_reason.skip_message.startswith("nothing new: 250 request(s)")
    # The mark remembers the old requests: the cursor names none of them one by one.
    cursor = RequestCursor.parse(idle.cursor)
    assert cursor.requested == {} and cursor.after[1] == ids[-1]


def test_a_tick_says_how_many_still_wait(defs, instance, db, settings) -> None:
    backlog(db, 250)
    first = next_requests(db, RequestCursor.parse(None), CAP, utcnow())
    assert len(first.chosen) == 100 and first.left == 150
    second = next_requests(db, first.cursor, CAP, utcnow())
    assert len(second.chosen) == 100 and second.left == 50
    third = next_requests(db, second.cursor, CAP, utcnow())
    assert len(third.chosen) == 50 and third.left == 0
    assert not {key for key, _, _ in first.chosen} & {key for key, _, _ in third.chosen}


def test_recent_requests_stay_in_the_cursor_until_past_the_grace(defs, instance, db) -> None:
    """A request committed late, behind newer ones already read, is still picked up: the mark
    passes only requests older than MARK_GRACE, and the cursor names the newer ones."""
    old = backlog(db, 3)
    recent = backlog(db, 2, age=MARK_GRACE / 2)
    first = tick(defs, instance, None)
    assert [run.partition_key for run in first.run_requests] == old + recent
    cursor = RequestCursor.parse(first.cursor)
    assert cursor.after[1] == old[-1] and set(cursor.requested) == set(recent)
    # One made before the recent ones commits only now.
    (late,) = backlog(db, 1, age=MARK_GRACE * 3 / 4)
    again = tick(defs, instance, first.cursor)
    assert [run.partition_key for run in again.run_requests] == [late]
    # Later, past the grace, the mark moves over all of them and the cursor empties.
    later = next_requests(db, RequestCursor.parse(again.cursor), CAP, utcnow() + MARK_GRACE)
    assert later.chosen == [] and later.cursor.requested == {}
    assert later.cursor.after[1] == recent[-1]


def test_backordered_and_retried_requests_are_served_beside_a_backlog(defs, instance, db):
    refill(defs, instance, FEMALE_ADULT, 2)
    ids = backlog(db, 250)
    # The oldest is backordered (now covered by the stock), the next one failed and retried.
    with db.session() as session:
        backordered = session.get(DatasetRequest, ids[0])
        backordered.status, backordered.attempts = "backordered", 1
        failed = session.get(DatasetRequest, ids[1])
        failed.status, failed.attempts = "failed", 1
    retry_request(db, ids[1])
    runs, _ = drain(defs, instance)
    assert [len(batch) for batch in runs] == [100, 100, 50]
    first = {run.partition_key: run for run in runs[0]}
    assert first[ids[0]].run_key == f"{ids[0]}:1"
    assert first[ids[0]].tags["synth/why"] == "restocked"
    assert first[ids[1]].run_key == f"{ids[1]}:1"
    keys = [run.run_key for batch in runs for run in batch]
    assert len(keys) == len(set(keys)) == 250


def test_a_request_whose_run_started_is_not_picked_again(defs, instance, db) -> None:
    ids = backlog(db, 3, age=MARK_GRACE / 2)  # recent: the cursor names them
    first = tick(defs, instance, None)
    assert len(first.run_requests) == 3
    # The first run packages its request; the second is still queued.
    with db.session() as session:
        session.get(DatasetRequest, ids[0]).status = "ready"
    again = tick(defs, instance, first.cursor)
    assert not again.run_requests
    assert set(RequestCursor.parse(again.cursor).requested) == set(ids[1:])


def test_a_cursor_from_before_the_mark_is_read(defs, instance, db) -> None:
    ids = backlog(db, 3)
    earlier = json.dumps({ids[0]: 0})  # key → attempt, as the sensor wrote it before
    result = tick(defs, instance, earlier)
    assert [run.partition_key for run in result.run_requests] == ids[1:]


def test_attempt_sensors_are_capped_too(defs, instance, db) -> None:
    jobs = [tabular_job(db, "confirmed") for _ in range(CAP + 5)]
    with db.session() as session:  # made one second apart, in order
        start = utcnow() - timedelta(hours=1)
        for n, key in enumerate(jobs):
            session.get(TabularJob, key).created_at = start + timedelta(seconds=n)
    cursor = None
    batches = []
    for _ in range(3):
        result = evaluate_sensor(defs, instance, TABULAR_JOB_SENSOR, cursor)
        cursor = result.cursor
        batches.append([run.partition_key for run in result.run_requests])
    assert [len(batch) for batch in batches] == [CAP, 5, 0]
    assert sorted(batches[0] + batches[1]) == sorted(jobs)
