"""A check with nothing to check is skipped, with its reason, on a real Dagster instance: recorded
as a warning that did not pass (never a pass), marked `skipped`, holding no delivery, and counted
apart by `synth checks run`."""

from __future__ import annotations

import textwrap

import dagster as dg
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from synth_pipelines.cli import app
from synth_pipelines.core.checks.holds import open_holds
from synth_pipelines.core.checks.names import (
    IDENTITY_LEAKAGE,
    TABULAR_ACCEPTED_CATEGORIES,
    TABULAR_PATTERN,
    TABULAR_UNIQUE,
)
from synth_pipelines.core.delivery.requests import get_request
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.storage.models import Face
from synth_pipelines.core.tabular.jobs import JobParams, confirm_job, create_job
from synth_pipelines.core.tabular.schema import TableSchema
from synth_pipelines.dbt_like_checks.results import evaluation_status
from synth_pipelines.dbt_like_checks.run import run_checks
from synth_pipelines.dbt_like_checks.sensors import CHECK_FAILURE_SENSOR
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import (
    apply_check_holds_in_process,
    evaluate_sensor,
    package_requests_in_process,
    run_tabular_jobs_in_process,
)
from synth_pipelines.settings import Settings
from tests.helpers import refill, request

FEMALE_ADULT = Bucket("female", "adult")
FACES, TABULAR = dg.AssetKey("face_inventory"), dg.AssetKey("tabular_dataset")
EMAIL_REGEX = "email__regex"  # tabular_dataset.yml


@pytest.fixture
def database_url(tmp_path) -> str:
    """Skips do not depend on the database engine: SQLite only."""
    return f"sqlite:///{tmp_path / 'factory.db'}"


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {
        "SYNTH_TARGET_PER_BUCKET": "3",
        "SYNTH_FACE_SIZE": "64",
        "SYNTH_TABULAR_EMBEDDER": "hashing",
        "SYNTH_TABULAR_WORKERS": "1",
    }


def meta(evaluation: dg.AssetCheckEvaluation) -> dict:
    return {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}


def assert_skipped(evaluation: dg.AssetCheckEvaluation, reason: str) -> None:
    """Recorded as a non-passing warning that says it was skipped, and why."""
    assert not evaluation.passed, evaluation.description
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.description.startswith("skipped: "), evaluation.description
    assert reason in evaluation.description and reason in meta(evaluation)["skip_reason"]
    assert meta(evaluation)["skipped"] is True and evaluation_status(evaluation) == "skipped"


def latest_record(instance: dg.DagsterInstance, key: dg.AssetCheckKey):
    return instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]


def test_tabular_checks_without_a_subject_are_skipped_not_passed(settings, db, instance) -> None:
    # no category, pattern, email or currency column: those checks have nothing to check
    schema = TableSchema.parse(
        {
            "name": "plain",
            "columns": [
                {"name": "n", "type": "integer", "unique": True},
                {"name": "amount", "type": "float", "min": 1, "max": 5},
            ],
        }
    )
    job = create_job(db, "plain", schema, "offline")
    params = JobParams(total_rows=200, chunk_size=100, max_workers=1, dedup_threshold=1, seed=3)
    confirm_job(db, job.id, params)
    defs = build_definitions(settings)
    [run], _ = run_tabular_jobs_in_process(defs, instance)
    assert run.success  # a skip blocks nothing
    checks = {e.check_name: e for e in run.get_asset_check_evaluations()}
    assert checks[TABULAR_UNIQUE].passed and evaluation_status(checks[TABULAR_UNIQUE]) == "passed"
    assert_skipped(
        checks[TABULAR_ACCEPTED_CATEGORIES],
        "no column in the job's schema has the accepted_categories constraint",
    )
    assert_skipped(checks[TABULAR_PATTERN], "has the pattern constraint")
    assert_skipped(checks[EMAIL_REGEX], f"no column 'email' in tabular job {job.id}")
    # Dagster keeps it as an evaluated warning, not a pass (nor an unexplained skip)
    record = latest_record(instance, dg.AssetCheckKey(TABULAR, TABULAR_ACCEPTED_CATEGORIES))
    assert record.status.value == "FAILED"
    assert record.evaluation.description.startswith("skipped: ")


def test_identity_leakage_without_a_reference_set_is_skipped_and_holds_nothing(
    settings, instance
) -> None:
    assert settings.checks.protected_faces_dir is None
    defs = build_definitions(settings)
    db = defs.resources["factory_db"].get_db()
    refill(defs, instance, FEMALE_ADULT, 3)
    key = dg.AssetCheckKey(FACES, IDENTITY_LEAKAGE)
    result = run_checks(defs, instance, [key])
    [leakage] = result.get_asset_check_evaluations()
    assert_skipped(leakage, "no protected reference set configured (SYNTH_PROTECTED_FACES_DIR)")
    assert meta(leakage)["reference_configured"] is False and "buckets" not in meta(leakage)
    # the sensor places no hold for it, and delivery from its buckets goes on
    tick = evaluate_sensor(defs, instance, CHECK_FAILURE_SENSOR)
    assert not tick.run_requests and open_holds(db) == []
    wanted = request(db, {"female/adult": 2})
    runs, _ = package_requests_in_process(defs, instance)
    assert [run.success for run in runs] == [True]
    assert get_request(db, wanted).status == "ready"

    # `synth checks run` reports it as skipped: not passed, not failed, exit 0
    runner = CliRunner()
    out = runner.invoke(app, ["checks", "run", "--select", IDENTITY_LEAKAGE])
    assert out.exit_code == 0, out.output
    flat = " ".join(out.output.split())
    assert "skipped" in flat and "FAIL" not in flat and " pass " not in flat
    assert "0 passed, 0 failed, 0 warned, 1 skipped, 0 did not run" in flat


def test_a_skip_neither_places_nor_lifts_a_hold(settings, tmp_path, monkeypatch, instance) -> None:
    # one check whose `where` can leave it nothing to check
    folder = tmp_path / "checks"
    folder.mkdir()
    (folder / "available.yml").write_text(
        textwrap.dedent(
            """
            assets:
              - name: face_inventory
                columns:
                  - name: gender_confidence
                    tests:
                      - range: {min: 0, max: 1, where: "status == 'available'",
                                name: confidence_of_available}
            """
        )
    )
    monkeypatch.setenv("SYNTH_CHECKS_DIR", str(folder))
    defs = build_definitions(Settings.from_env())
    db = defs.resources["factory_db"].get_db()
    refill(defs, instance, FEMALE_ADULT, 3)
    key = dg.AssetCheckKey(FACES, "confidence_of_available")

    def check(**values) -> dg.AssetCheckEvaluation:
        with db.session() as session:
            session.execute(update(Face).values(**values))
        [evaluation] = run_checks(defs, instance, [key]).get_asset_check_evaluations()
        runs, cursor["value"] = apply_check_holds_in_process(defs, instance, cursor.get("value"))
        assert all(run.success for run in runs)
        return evaluation

    cursor: dict[str, str | None] = {}
    assert not check(gender_confidence=3.0).passed
    [hold] = open_holds(db)
    assert hold.check_name == "confidence_of_available" and hold.buckets == ("female/adult",)
    # no available face left: nothing to check, which says nothing about the held faces
    skipped = check(status="reserved")
    assert_skipped(skipped, "no rows (where status == 'available') in face_inventory")
    assert [h.check_name for h in open_holds(db)] == ["confidence_of_available"]
    # only a pass lifts it
    assert check(status="available", gender_confidence=0.5).passed
    assert open_holds(db) == []
