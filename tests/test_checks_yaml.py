"""YAML data tests: the compiler's errors (file, line, what is wrong) and the compiled checks
running through Great Expectations on a real Dagster instance and factory database."""

from __future__ import annotations

import textwrap
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from sqlalchemy import update

from synth_pipelines.core.checks import kinds
from synth_pipelines.core.checks.catalog import build_ge_catalog, ge_catalog
from synth_pipelines.core.checks.expectations import run_tests
from synth_pipelines.core.checks.measurement import TableMeasurement
from synth_pipelines.core.checks.spec import CheckSpecError, load_specs, spec_files
from synth_pipelines.core.checks.tables import TABLES
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import Face
from synth_pipelines.dbt_like_checks.compiler import PACKAGED
from synth_pipelines.dbt_like_checks.results import evaluation_status
from synth_pipelines.dbt_like_checks.validation import VALIDATION_JOB
from synth_pipelines.definitions import build_definitions
from synth_pipelines.lines.faces.sensors import REFILL_JOB, refill_run_config
from synth_pipelines.partitions import partition_for_bucket
from synth_pipelines.settings import Settings


def write(folder: Path, text: str, name: str = "extra.yml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def compile_error(tmp_path: Path, text: str) -> CheckSpecError:
    path = write(tmp_path, text)
    with pytest.raises(CheckSpecError) as caught:
        load_specs([path], TABLES)
    assert caught.value.path == str(path)
    return caught.value


def test_shipped_yaml_compiles_to_named_checks() -> None:
    specs = load_specs(spec_files(PACKAGED), TABLES)
    names = {(spec.asset, spec.name): spec for spec in specs}
    gender = names["face_inventory", "gender__accepted_values"]
    assert gender.blocking and gender.args == {"values": ["female", "male"]}
    assert gender.location.startswith("face_inventory.yml:")
    assert names["face_inventory", "row_count"].severity == "warn"
    assert ("face_inventory", "id__expect_column_value_lengths_to_equal") in names
    # one name on two assets is two checks: Dagster keys a check by its asset and name
    assert {"face_inventory", "dataset_package"} <= {a for a, n in names if n == "id__not_null"}
    assert {s.asset for s in specs} == {"face_inventory", "dataset_package", "tabular_dataset"}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            """
            assets:
              - name: face_inventory
                columns:
                  - name: gender
                    tests:
                      - not_null
                      - acepted_values: {values: [female]}
            """,
            7,
            "unknown test 'acepted_values'",
        ),
        (
            """
            assets:
              - name: face_inventory
                columns:
                  - name: gendr
                    tests: [not_null]
            """,
            4,
            "unknown column 'gendr' of face_inventory",
        ),
        (
            """
            assets:
              - name: face_inventory
                columns:
                  - name: gender
                    tests:
                      - accepted_values: {severity: warn}
            """,
            6,
            "missing argument 'values'",
        ),
        (
            """
            assets:
              - name: face_inventory
                columns:
                  - name: created_at
                    tests:
                      - expect_column_values_to_match_strftime_format: {}
            """,
            6,
            "missing argument 'strftime_format'",
        ),
        (
            """
            assets:
              - name: face_inventory
                columns:
                  - name: width
                    tests:
                      - range: {min: 10, max: 1}
            """,
            6,
            "min 10 > max 1",
        ),
        (
            """
            assets:
              - name: face_inventory
                columns:
                  - name: width
                    tests:
                      - range: {min: 1, where: "width >"}
            """,
            6,
            "is not an expression",
        ),
        (
            """
            assets:
              - name: face_inventory
                columns:
                  - name: width
                    tests:
                      - range: {min: 1, severity: fatal}
            """,
            6,
            "severity 'fatal' is not error or warn",
        ),
        (
            """
            assets:
              - name: face_inventory
                columns:
                  - name: gender
                    tests:
                      - row_count: {min: 1}
            """,
            6,
            "row_count is a table-level test",
        ),
        (
            """
            assets:
              - name: face_inventry
            """,
            2,
            "unknown asset 'face_inventry'",
        ),
        (
            """
            assets:
              - name: face_inventory
                columns:
                  - name: request_id
                    tests:
                      - relationships: {to: dataset_package, field: identifier}
            """,
            6,
            "dataset_package has no column 'identifier'",
        ),
        (
            """
            assets:
              - name: face_inventory
                columns:
                  - name: gender
                    tests:
                      - unique: {colour: red}
            """,
            6,
            "unknown argument 'colour'",
        ),
        (
            """
            assets:
              - name: face_inventory
                columns:
                  - name: gender
                    tests: [not_null, not_null]
            """,
            5,
            "already used",
        ),
        (
            """
            assets:
              - name: face_inventory
                columns:
                  - name: created_at
                    tests:
                      - freshness: {max_age: 1d, name: freshness}
            """,
            6,
            "check name 'freshness' is a built-in check of face_inventory",
        ),
        (
            """
            assets:
              - name: face_inventory
                columns:
                  - name: gender
                    tests:
                      - not_null
                      - not_null: {name: face_inventory__gender__not_null, severity: warn}
            """,
            7,
            "check name 'gender__not_null' on face_inventory is already used",
        ),
        (
            """
            assets:
              - name: face_inventory
                columns:
                  - name: gender
                    tests:
                      - accepted_values: {values: [a]
            """,
            7,
            "not valid YAML",
        ),
    ],
)
def test_bad_yaml_names_file_line_and_problem(tmp_path, text, line, message) -> None:
    error = compile_error(tmp_path, text)
    assert message in str(error)
    assert error.line == line, str(error)
    assert str(error).startswith(f"{tmp_path / 'extra.yml'}:{line}:")


def test_an_unknown_kind_names_every_accepted_one() -> None:
    with pytest.raises(kinds.UnknownTestKindError) as caught:
        kinds.kind_named("not_nul")
    message = str(caught.value)
    ours = "not_null, unique, accepted_values, relationships, range, regex, row_count, freshness"
    assert f"unknown test 'not_nul': use one of {ours}, distribution or a Great" in message
    assert kinds.kind_named("expect_column_values_to_match_regex").expectation == (
        "ExpectColumnValuesToMatchRegex"
    )


def test_names_need_no_asset_prefix_and_are_unique_per_asset(tmp_path) -> None:
    path = write(
        tmp_path,
        """
        assets:
          - name: face_inventory
            tests:
              - row_count: {min: 1}
            columns:
              - name: id
                tests:
                  - not_null
                  - unique: {name: face_inventory__ids_differ}  # a name from before issue 21
          - name: dataset_package
            tests:
              - row_count: {min: 0}
            columns:
              - name: id
                tests: [not_null]
        """,
    )
    keys = [(spec.asset, spec.name) for spec in load_specs([path], TABLES)]
    assert keys == [
        ("face_inventory", "row_count"),
        ("face_inventory", "id__not_null"),
        ("face_inventory", "ids_differ"),
        ("dataset_package", "row_count"),
        ("dataset_package", "id__not_null"),
    ]


def test_no_check_in_the_definitions_repeats_its_asset_in_its_name(settings) -> None:
    keys = build_definitions(settings).resolve_asset_graph().asset_check_keys
    by_asset: dict[str, set[str]] = {}
    for key in keys:
        by_asset.setdefault(key.asset_key.to_user_string(), set()).add(key.name)
    assert {"face_inventory", "dataset_package", "tabular_dataset"} <= set(by_asset)
    repeated = [(a, n) for a, names in by_asset.items() for n in names if n.startswith(f"{a}__")]
    assert repeated == []
    assert {"near_duplicates", "identity_leakage", "gender__not_null"} <= by_asset["face_inventory"]
    assert {"accepted_categories", "email__regex"} <= by_asset["tabular_dataset"]


def test_a_kind_registered_by_decorator_compiles_and_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(kinds, "TEST_KINDS", dict(kinds.TEST_KINDS))  # leave the real one be

    @kinds.custom_test("lower_case", describe=lambda subject, args: f"{subject} is lower case")
    def lower_case(spec, frame: pd.DataFrame) -> TableMeasurement:
        bad = [v for v in frame[spec.column].dropna() if v != v.lower()]
        return TableMeasurement(spec, passed=not bad, element_count=len(frame), sample=bad)

    path = write(
        tmp_path,
        """
        assets:
          - name: face_inventory
            columns:
              - name: gender
                tests: [lower_case]
        """,
    )
    [spec] = load_specs([path], TABLES)
    assert (spec.name, spec.description) == ("gender__lower_case",
                                             "`gender` is lower case")  # fmt: skip
    [measured] = run_tests([spec], pd.DataFrame({"gender": ["female", "Male", None]}))
    assert not measured.passed and measured.sample == ["Male"]
    with pytest.raises(ValueError, match="registered twice"):
        kinds.custom_test("lower_case")(lower_case)


def test_bad_yaml_fails_definitions_load(synth_home, monkeypatch, tmp_path) -> None:
    folder = tmp_path / "checks"
    write(
        folder,
        """
        assets:
          - name: face_inventory
            columns:
              - name: gender
                tests: [not_nul]
        """,
    )
    monkeypatch.setenv("SYNTH_CHECKS_DIR", str(folder))
    with pytest.raises(CheckSpecError, match=r"extra.yml:5: unknown test 'not_nul'"):
        build_definitions(Settings.from_env())


def test_ge_catalog_snapshot_matches_installed_great_expectations() -> None:
    assert ge_catalog() == build_ge_catalog()


def test_tests_run_through_great_expectations_with_where_and_distribution(tmp_path) -> None:
    path = write(
        tmp_path,
        """
        assets:
          - name: face_inventory
            tests:
              - row_count: {min: 5}
            columns:
              - name: gender
                tests:
                  - accepted_values: {values: [female, male]}
                  - distribution: {shares: {female: 0.5, male: 0.5}, tolerance: 0.1}
              - name: gender_confidence
                tests:
                  - range: {min: 0, max: 1, where: "status == 'available'"}
              - name: created_at
                tests:
                  - freshness: {max_age: 1h}
              - name: object_key
                tests:
                  - expect_column_values_to_match_regex: {regex: "^faces/"}
        """,
    )
    specs = load_specs([path], TABLES)
    now = pd.Timestamp.now(tz="UTC")
    frame = pd.DataFrame(
        {
            "gender": ["female", "male", "other", "male", "male", "male"],
            "age_group": ["adult", "adult", "teen", "child", "child", "senior"],
            "gender_confidence": [0.5, 1.5, 2.0, 0.1, 0.2, 0.3],
            "status": ["available", "available", "delivered", "available", "available", "shared"],
            "created_at": [now - pd.Timedelta(hours=3)] * 6,
            "object_key": ["faces/a", "faces/b", "x/c", "faces/d", "faces/e", "faces/f"],
        }
    )
    outcomes = {o.spec.test: o for o in run_tests(specs, frame)}
    assert outcomes["row_count"].passed and outcomes["row_count"].observed == 6
    gender = outcomes["accepted_values"]
    assert not gender.passed and gender.unexpected_count == 1 and gender.sample == ["other"]
    assert gender.buckets == ["other/teen"]
    # the delivered row's 2.0 is outside the where filter; the available 1.5 is not
    confidence = outcomes["range"]
    assert confidence.unexpected_count == 1 and confidence.sample == [1.5]
    assert confidence.element_count == 4 and confidence.buckets == ["male/adult"]
    assert not outcomes["freshness"].passed
    assert not outcomes["distribution"].passed and "male" in outcomes["distribution"].sample
    regex = outcomes["expect_column_values_to_match_regex"]
    assert regex.unexpected_count == 1 and regex.expectation["kwargs"]["regex"] == "^faces/"
    frame["created_at"] = now
    frame.loc[frame.gender == "other", "gender"] = "female"
    frame.loc[:, "gender"] = ["female", "male", "female", "male", "female", "male"]
    again = {o.spec.test: o for o in run_tests(specs, frame)}
    assert again["freshness"].passed and again["distribution"].passed
    assert again["accepted_values"].passed


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {"SYNTH_TARGET_PER_BUCKET": "3", "SYNTH_FACE_SIZE": "128"}


def check_results(
    result: dg.ExecuteInProcessResult,
) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    """Evaluations by (asset, check name): names are unique per asset only."""
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def test_validation_job_runs_yaml_checks_on_the_factory_db(settings) -> None:
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        for bucket in (Bucket("female", "adult"), Bucket("male", "teen")):
            refill = defs.resolve_job_def(REFILL_JOB).execute_in_process(
                partition_key=str(partition_for_bucket(bucket)),
                run_config=refill_run_config(3),
                instance=instance,
            )
            # refills stay one fast step: the inventory's checks are not part of them
            assert not refill.get_asset_check_evaluations()
        job = defs.resolve_job_def(VALIDATION_JOB)
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        checks = check_results(result)
        yaml_keys = {(s.asset, s.name) for s in load_specs(spec_files(PACKAGED), TABLES)}
        assert yaml_keys <= set(checks)
        failed = {
            key
            for key, check in checks.items()
            if evaluation_status(check) in ("failed", "warned") and key in yaml_keys
        }
        assert not {key for key in failed if key[0] == "face_inventory"}, failed
        # no face is delivered: the relationship test on delivered rows has nothing to check
        unchecked = checks["face_inventory", "request_id__relationships"]
        assert not unchecked.passed and evaluation_status(unchecked) == "skipped"
        assert unchecked.description == (
            "skipped: no rows (where status == 'delivered') in face_inventory"
        )
        db = FactoryDatabase(settings.database_url)
        with db.session() as session:
            session.execute(update(Face).where(Face.gender == "male").values(gender_confidence=1.7))
        again = check_results(job.execute_in_process(instance=instance, raise_on_error=False))
        broken = again["face_inventory", "gender_confidence__range"]
        assert not broken.passed and broken.severity == dg.AssetCheckSeverity.ERROR
        metadata = {k: getattr(v, "value", v) for k, v in broken.metadata.items()}
        assert metadata["unexpected_count"] == 3
        assert metadata["buckets"] == ["male/teen"]
        assert metadata["failing_sample"] == [1.7, 1.7, 1.7]
        assert metadata["source"].startswith("face_inventory.yml:")
        assert metadata["expectation"]["type"] == "expect_column_values_to_be_between"
        assert again["face_inventory", "gender__accepted_values"].passed
