"""check_failure_sensor end to end: a failed error-severity check pauses delivery from the
buckets it names (requests wait as backordered, with the reason) until the check passes again.
The sensor only asks: apply_check_holds_job, the run it requests, writes the holds."""

from __future__ import annotations

import dagster as dg
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from synth_pipelines.cli import app
from synth_pipelines.core.checks.holds import open_holds, paused_buckets, record_failure
from synth_pipelines.core.delivery.requests import get_request
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import AuditRecord, Face
from synth_pipelines.dbt_like_checks.holds import APPLY_CHECK_HOLDS_JOB, APPLY_CHECK_HOLDS_OP
from synth_pipelines.dbt_like_checks.sensors import CHECK_FAILURE_SENSOR
from synth_pipelines.dbt_like_checks.validation import VALIDATION_JOB
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import (
    apply_check_holds_in_process,
    evaluate_sensor,
    package_requests_in_process,
)
from tests.helpers import refill, request
from tests.launchpad import step_failure

CHECK = "gender_confidence__range"  # on face_inventory
TARGET = f"face_inventory:{CHECK}"  # as holds and the audit log name it
MALE_TEEN, FEMALE_ADULT = Bucket("male", "teen"), Bucket("female", "adult")
runner = CliRunner()


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {"SYNTH_TARGET_PER_BUCKET": "4", "SYNTH_FACE_SIZE": "64"}


def validate(defs, instance) -> dict[str, dg.AssetCheckEvaluation]:
    result = defs.resolve_job_def(VALIDATION_JOB).execute_in_process(
        instance=instance, raise_on_error=False
    )
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def set_confidence(db: FactoryDatabase, gender: str, value: float) -> None:
    with db.session() as session:
        session.execute(update(Face).where(Face.gender == gender).values(gender_confidence=value))


def test_failed_check_pauses_its_buckets_until_it_passes(settings) -> None:
    defs = build_definitions(settings)
    db = FactoryDatabase(settings.database_url)
    with dg.instance_for_test() as instance:
        refill(defs, instance, MALE_TEEN, 4)
        refill(defs, instance, FEMALE_ADULT, 4)
        set_confidence(db, "male", 3.0)  # data broken outside any run
        assert not validate(defs, instance)[CHECK].passed
        # the sensor asks for the hold and writes nothing itself
        tick = evaluate_sensor(defs, instance, CHECK_FAILURE_SENSOR)
        [place] = asked(tick, "place")
        assert (place["asset"], place["check_name"], place["buckets"]) == (
            "face_inventory",
            CHECK,
            ["male/teen"],
        )
        assert tick.run_requests[0].run_key.startswith("check-holds:") and open_holds(db) == []
        # the job it requests places the hold
        runs, cursor = apply_check_holds_in_process(defs, instance)
        assert [(run.success, run.dagster_run.job_name) for run in runs] == [
            (True, APPLY_CHECK_HOLDS_JOB)
        ]
        assert cursor == tick.cursor
        (hold,) = open_holds(db)
        assert (hold.asset, hold.check_name, hold.buckets) == (
            "face_inventory",
            CHECK,
            ("male/teen",),
        )
        assert paused_buckets(db) == {"male/teen": [f"face_inventory:{CHECK}"]}
        # a second tick with no new result asks for nothing
        again = evaluate_sensor(defs, instance, CHECK_FAILURE_SENSOR, cursor)
        assert not again.run_requests and len(open_holds(db)) == 1

        held = request(db, {"male/teen": 2})
        free = request(db, {"female/adult": 2})
        runs, cursor = package_requests_in_process(defs, instance)
        assert all(run.success for run in runs)
        waiting = get_request(db, held)
        assert waiting.status == "backordered"
        assert f"male/teen (face_inventory:{CHECK})" in waiting.reason
        assert get_request(db, free).status == "ready"
        # stock is there, but the hold keeps the request waiting
        runs, cursor = package_requests_in_process(defs, instance, cursor)
        assert runs == []

        set_confidence(db, "male", 0.9)
        assert validate(defs, instance)[CHECK].passed
        runs, _ = apply_check_holds_in_process(defs, instance, tick.cursor)
        assert [run.success for run in runs] == [True]
        assert open_holds(db) == [] and paused_buckets(db) == {}
        runs, cursor = package_requests_in_process(defs, instance, cursor)
        assert [run.success for run in runs] == [True]
        assert get_request(db, held).status == "ready"


def asked(tick: dg.SensorResult, what: str) -> list[dict]:
    """The holds to place (or lift) in the one run `tick` requests."""
    (run,) = tick.run_requests
    return run.run_config["ops"][APPLY_CHECK_HOLDS_OP]["config"][what]


def test_a_pass_lifts_a_hold_whose_placing_run_is_still_queued(settings) -> None:
    defs = build_definitions(settings)
    db = FactoryDatabase(settings.database_url)
    with dg.instance_for_test() as instance:
        refill(defs, instance, MALE_TEEN, 4)
        set_confidence(db, "male", 3.0)
        validate(defs, instance)
        placing = evaluate_sensor(defs, instance, CHECK_FAILURE_SENSOR)
        set_confidence(db, "male", 0.9)
        validate(defs, instance)
        # no hold is open yet (its run has not run), but the sensor remembers asking for it
        lifting = evaluate_sensor(defs, instance, CHECK_FAILURE_SENSOR, placing.cursor)
        assert [(h["asset"], h["check_name"]) for h in asked(lifting, "lift")] == [
            ("face_inventory", CHECK)
        ]
        assert placing.run_requests[0].run_key != lifting.run_requests[0].run_key
        job = defs.resolve_job_def(APPLY_CHECK_HOLDS_JOB)
        for tick in (placing, lifting):
            job.execute_in_process(run_config=tick.run_requests[0].run_config, instance=instance)
        assert open_holds(db) == []


def test_warn_failures_open_no_hold(settings) -> None:
    defs = build_definitions(settings)
    db = FactoryDatabase(settings.database_url)
    db.upgrade()
    with dg.instance_for_test() as instance:
        # an empty inventory fails only the warn-severity row_count test
        checks = validate(defs, instance)
        assert not checks["row_count"].passed
        assert checks["row_count"].severity == dg.AssetCheckSeverity.WARN
        # every image check runs on an empty inventory (none raises) and, with nothing to
        # check, is skipped: a warning that does not pass, never a pass
        for name in ("objects_present", "image_quality", "near_duplicates", "identity_leakage"):
            check = checks[name]
            assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN, name
            assert check.metadata["skipped"].value is True, name
            assert check.description.startswith("skipped: "), name
        empty = checks["near_duplicates"].description
        assert empty == "skipped: the inventory holds no face"
        tick = evaluate_sensor(defs, instance, CHECK_FAILURE_SENSOR)
        assert not tick.run_requests and open_holds(db) == []


def test_holds_recorded_under_the_old_prefixed_names_keep_working(settings) -> None:
    """Before issue 21 the checks were named `face_inventory__gender_confidence__range`: holds
    recorded then are renamed by migration 0007 and lifted by the check's next pass; hold runs
    requested then (old names, a lift without its asset) apply as the checks are named now."""
    db = FactoryDatabase(settings.database_url)
    db.upgrade("0006_subjects")
    old = f"face_inventory__{CHECK}"
    record_failure(db, old, "face_inventory", ["male/teen"], "out of range", "r0")
    record_failure(db, "perplexity", "persona_adapter", [], "never prefixed", "r0")
    record_failure(
        db, "face_inventory__blur", "dataset_package", ["male/teen"], "other asset", "r0"
    )
    db.upgrade()
    assert sorted((h.asset, h.check_name) for h in open_holds(db)) == [
        ("dataset_package", "face_inventory__blur"),  # not its own asset's prefix: kept
        ("face_inventory", CHECK),
        ("persona_adapter", "perplexity"),
    ]
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        # a run config the sensor wrote before the rename
        job = defs.resolve_job_def(APPLY_CHECK_HOLDS_JOB)
        legacy = {
            "place": [
                {
                    "check_name": "face_inventory__image_quality",
                    "asset": "face_inventory",
                    "buckets": ["female/adult"],
                    "description": "blurry",
                    "run_id": "r1",
                }
            ],
            "lift": [{"check_name": "perplexity", "run_id": "r1"}],
        }
        ops = {APPLY_CHECK_HOLDS_OP: {"config": legacy}}
        assert job.execute_in_process(run_config={"ops": ops}, instance=instance).success
        assert ("face_inventory", "image_quality") in {
            (h.asset, h.check_name) for h in open_holds(db)
        }
        assert "persona_adapter" not in {h.asset for h in open_holds(db)}
        # the renamed check passes: the sensor lifts the hold recorded under its old name
        refill(defs, instance, MALE_TEEN, 4)
        assert validate(defs, instance)[CHECK].passed
        tick = evaluate_sensor(defs, instance, CHECK_FAILURE_SENSOR)
        assert ("face_inventory", CHECK) in {
            (h["asset"], h["check_name"]) for h in asked(tick, "lift")
        }
        apply_check_holds_in_process(defs, instance)
        assert ("face_inventory", CHECK) not in {(h.asset, h.check_name) for h in open_holds(db)}


def audited_hold_actions(db: FactoryDatabase) -> list[tuple[str, str, str | None, dict]]:
    with db.session() as session:
        records = session.scalars(
            select(AuditRecord)
            .where(AuditRecord.action.like("check_hold.%"))
            .order_by(AuditRecord.seq)
        ).all()
        return [(r.actor, r.action, r.target, r.details) for r in records]


def test_a_person_lifts_a_hold_from_the_cli_and_the_lift_is_audited(settings, db) -> None:
    record_failure(db, CHECK, "face_inventory", ["male/teen"], "confidence out of range", "run-1")
    listed = runner.invoke(app, ["checks", "holds"])
    assert listed.exit_code == 0, listed.output
    assert CHECK in listed.output and "male/teen" in listed.output
    # Bad input: exit 1 with what is wrong, and the hold stays.
    missing = runner.invoke(app, ["checks", "lift", "nope", "--reason", "fixed"])
    assert missing.exit_code == 1
    assert f"no open hold for check 'nope'; open holds: {TARGET}" in " ".join(
        missing.output.split()
    )
    unexplained = runner.invoke(app, ["checks", "lift", CHECK, "--reason", " "])
    assert unexplained.exit_code == 1 and "say why" in unexplained.output
    assert paused_buckets(db) == {"male/teen": [TARGET]}

    lifted = runner.invoke(
        app, ["checks", "lift", CHECK, "--reason", "labels re-checked by hand", "--by", "alice"]
    )
    assert lifted.exit_code == 0, lifted.output
    assert "lifted the hold" in lifted.output and "male/teen" in lifted.output
    assert open_holds(db) == [] and paused_buckets(db) == {}
    assert audited_hold_actions(db) == [
        ("run:run-1", "check_hold.placed", TARGET, {"buckets": ["male/teen"]}),
        (
            "person:alice",
            "check_hold.lifted",
            TARGET,
            {"buckets": ["male/teen"], "reason": "labels re-checked by hand"},
        ),
    ]
    assert runner.invoke(app, ["checks", "holds"]).output.startswith("no open holds")
    verified = runner.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output


def test_a_hold_lifted_from_the_launchpad_is_audited(settings, db) -> None:
    record_failure(db, CHECK, "face_inventory", ["male/teen"], "confidence out of range", "run-1")
    defs = build_definitions(settings)
    lift = {"check_name": CHECK, "reason": "false alarm", "lifted_by": "bob"}
    config = {"ops": {APPLY_CHECK_HOLDS_OP: {"config": {"lift": [lift]}}}}
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(APPLY_CHECK_HOLDS_JOB).execute_in_process(
            run_config=config, instance=instance
        )
        assert result.success
        assert open_holds(db) == []
        actor, action, target, details = audited_hold_actions(db)[-1]
        assert (actor, action, target, details["reason"]) == (
            "person:bob",
            "check_hold.lifted",
            TARGET,
            "false alarm",
        )
        # Lifting what is not held fails the run, naming the check.
        again = defs.resolve_job_def(APPLY_CHECK_HOLDS_JOB).execute_in_process(
            run_config=config, instance=instance, raise_on_error=False
        )
        assert not again.success
        assert f"no open hold for check {CHECK!r}" in step_failure(again)
