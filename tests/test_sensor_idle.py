"""What a sensor says when it requests nothing: what it waits for, never "N waiting" for work
it has already handled (the persona sensor used to log "1 persona(s) waiting" every tick)."""

from __future__ import annotations

import pytest

from synth_pipelines.core.storage.models import TabularJob
from synth_pipelines.core.tabular.jobs import JobParams, confirm_job, create_job
from synth_pipelines.core.tabular.schema import TableSchema
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import evaluate_sensor
from synth_pipelines.lines.dynamic import idle_reason
from synth_pipelines.lines.tabular.sensors import TABULAR_JOB_SENSOR

SCHEMA = TableSchema.parse(
    {"name": "t", "columns": [{"name": "id", "type": "integer", "semantic_type": "id"}]}
)


def test_the_job_sensor_says_what_it_waits_for(settings, db, instance) -> None:
    defs = build_definitions(settings)
    first = evaluate_sensor(defs, instance, TABULAR_JOB_SENSOR)
    assert (
        first.skip_reason.skip_message
        == "no jobs yet; waiting for a job to be confirmed or retried"
    )
    create_job(db, "a draft is never run", SCHEMA, "test")
    job = create_job(db, "ids", SCHEMA, "test")
    confirm_job(db, job.id, JobParams(10, 10, 1, 1.0, 1))
    second = evaluate_sensor(defs, instance, TABULAR_JOB_SENSOR, first.cursor)
    assert [run.partition_key for run in second.run_requests] == [job.id]
    instance.add_dynamic_partitions("tabular_jobs", [job.id])  # as the launched run does
    third = evaluate_sensor(defs, instance, TABULAR_JOB_SENSOR, second.cursor)
    assert not third.run_requests
    assert third.skip_reason.skip_message == (
        "nothing new: 1 job(s) already handled; waiting for a job to be confirmed or retried"
    )
    # Completed, the job leaves the sensor's waiting list; it was still handled, not "no jobs".
    with db.session() as session:
        session.get(TabularJob, job.id).status = "completed"
    fourth = evaluate_sensor(defs, instance, TABULAR_JOB_SENSOR, third.cursor)
    assert fourth.skip_reason.skip_message == (
        "nothing new: 1 job(s) already handled; waiting for a job to be confirmed or retried"
    )


@pytest.mark.parametrize("known", [0, 3])
def test_an_idle_reason_never_calls_handled_work_waiting(known) -> None:
    reason = idle_reason("persona", known, "a new upload to an active persona")
    assert reason.endswith("waiting for a new upload to an active persona")
    assert "persona(s) waiting" not in reason
