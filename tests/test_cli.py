"""The `synth` command through its real entry point (Typer's runner, in process)."""

from __future__ import annotations

import re

import dagster as dg
from typer.testing import CliRunner

from synth_pipelines.cli import app

runner = CliRunner()


def test_demo_fills_every_bucket_through_dagster_runs(synth_home, monkeypatch) -> None:
    monkeypatch.setenv("SYNTH_FACE_SIZE", "128")
    monkeypatch.setenv("SYNTH_PERSONA_TRAIN_STEPS", "30")
    monkeypatch.setenv("SYNTH_PERSONA_SAMPLES", "8")
    monkeypatch.setenv("SYNTH_TABULAR_EMBEDDER", "hashing")
    result = runner.invoke(app, ["demo", "--per-bucket", "2", "--tabular-rows", "5000"])
    assert result.exit_code == 0, result.output
    assert "female/young_adult" in result.output
    assert "faces/s end to end" in result.output
    assert "every file verified against manifest.json" in result.output
    # The prompt says 10k; the option's 5,000 is said to override it, not applied silently.
    assert "--tabular-rows overrides the 10,000 rows the prompt asks for" in result.output
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
    # ten refills, one dataset package, one tabular job, one persona run, one Flux run, one
    # image set run, and validation_job last, so that the UI shows every check evaluated
    assert len(runs) == 16
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    assert runs[0].job_name == "validation_job"  # newest first
    jobs = sorted(run.job_name for run in runs)
    assert jobs[0] == "dataset_package_job" and jobs[-2] == "tabular_dataset_job"
    assert "persona_training_job" in jobs and "flux_lora_job" in jobs
    assert "image_set_job" in jobs
    with dg.DagsterInstance.get() as instance:
        evaluated = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("face_inventory"), "near_duplicates"), limit=1
        )
    assert evaluated and evaluated[0].run_id == runs[0].run_id
    assert "validation_job in" in result.output
    assert len(list((synth_home / "datasets").glob("synth-faces-*.zip"))) == 1
    flat = " ".join(result.output.split())  # rich wraps long lines
    assert "5,000 rows in" in flat
    assert "POST" in flat and "/imagesets" in flat and "export imagefolder" in flat
    assert re.search(r"check privacy\W+passed", flat), flat
    # the job's five schema checks and the YAML tests on tabular_dataset: none fails, and
    # those with nothing to check in this table (no email column) are named skipped, not passed
    passed = re.search(r"(\d+) of (\d+) checks passed", flat)
    assert passed and int(passed.group(2)) >= 8 and "; failed" not in flat
    skipped = re.search(r"skipped \(nothing to check\) ([\w, ]+)\)", flat)
    assert skipped and "email__regex" in skipped.group(1)
    assert int(passed.group(1)) + len(skipped.group(1).split(", ")) == int(passed.group(2))
    assert len(list((synth_home / "tables").glob("*.parquet"))) == 1
    draft = re.search(
        r"Draft \(the tiny test model's output: random weights, so noise; "
        r"released after approval\): (['\"])(.*?)\1 Audit log",
        flat,
    )
    assert draft, flat
    # Whatever the random model wrote, no raw control character reaches the terminal.
    assert all(ch.isprintable() for ch in draft.group(2))
    assert "chain intact" in flat and "Adapter v1 (lora, 30 steps)" in flat
    assert "5 photos accepted" in flat and "A prompt against the content policy: HTTP 403" in flat
    assert len(list((synth_home / "flux").glob("*.png"))) == 2

    again = runner.invoke(app, ["inventory"])
    assert again.exit_code == 0, again.output
    assert "total" in again.output


def test_bad_setting_exits_non_zero_naming_the_accepted_values(synth_home, monkeypatch) -> None:
    monkeypatch.setenv("SYNTH_LABEL_SOURCE", "majority")
    result = runner.invoke(app, ["inventory"])
    assert result.exit_code == 1
    assert "SYNTH_LABEL_SOURCE='majority' is not one of: auto, classifier, generator, agree" in (
        result.output
    )


def test_unreachable_database_exits_non_zero_naming_it(synth_home, monkeypatch) -> None:
    monkeypatch.setenv("SYNTH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/factory")
    result = runner.invoke(app, ["inventory"])
    assert result.exit_code == 1
    assert "127.0.0.1:1/factory is not reachable" in result.output


def test_unknown_bucket_in_targets_lists_the_buckets(synth_home, monkeypatch) -> None:
    monkeypatch.setenv("SYNTH_TARGETS", "female/elderly=10")
    result = runner.invoke(app, ["inventory"])
    assert result.exit_code == 1
    assert "bucket 'female/elderly' is not one of: female/child" in result.output


def test_request_waits_downloads_and_verifies(synth_home, monkeypatch, tmp_path) -> None:
    import threading

    from synth_pipelines.api.app import create_app
    from synth_pipelines.api.server import running_server
    from synth_pipelines.core.faces.buckets import Bucket
    from synth_pipelines.definitions import build_definitions
    from synth_pipelines.in_process import package_requests_in_process
    from synth_pipelines.lines.faces.sensors import REFILL_JOB, refill_run_config
    from synth_pipelines.partitions import partition_for_bucket
    from synth_pipelines.settings import Settings

    monkeypatch.setenv("SYNTH_FACE_SIZE", "64")
    settings = Settings.from_env()
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance, running_server(create_app(settings)) as url:
        defs.resolve_job_def(REFILL_JOB).execute_in_process(
            partition_key=str(partition_for_bucket(Bucket("male", "teen"))),
            run_config=refill_run_config(2),
            instance=instance,
        )
        done = threading.Event()

        def daemon() -> None:  # stands in for the Dagster daemon while the CLI waits
            cursor = None
            while not done.is_set():
                _, cursor = package_requests_in_process(defs, instance, cursor)
                done.wait(0.2)

        worker = threading.Thread(target=daemon)
        worker.start()
        try:
            result = runner.invoke(
                app, ["request", "male/teen=2", "--wait", "--out", str(tmp_path), "--api", url]
            )
        finally:
            done.set()
            worker.join()
    assert result.exit_code == 0, result.output
    assert "manifest verified" in result.output
    assert len(list(tmp_path.glob("synth-faces-*/images/male/teen/*.png"))) == 2


def test_request_with_a_bad_bucket_exits_non_zero(synth_home) -> None:
    from synth_pipelines.api.app import create_app
    from synth_pipelines.api.server import running_server

    with running_server(create_app()) as url:
        result = runner.invoke(app, ["request", "male/elder=2", "--api", url])
    assert result.exit_code == 1
    assert "bucket 'male/elder' is not one of" in result.output


def test_checks_run_prints_results_and_fails_on_error_severity(synth_home, monkeypatch) -> None:
    from sqlalchemy import update

    from synth_pipelines.core.storage.database import FactoryDatabase
    from synth_pipelines.core.storage.models import Face
    from synth_pipelines.settings import Settings

    monkeypatch.setenv("SYNTH_FACE_SIZE", "64")
    demo = runner.invoke(
        app,
        [
            "demo",
            "--per-bucket",
            "1",
            "--no-dataset",
            "--tabular-rows",
            "0",
            "--no-persona",
            "--no-flux",
            "--no-images",
        ],
    )
    assert demo.exit_code == 0, demo.output
    # a name glob, an asset:name glob, and a name as it was before issue 21
    selection = [
        "-s",
        "gender__*",
        "-s",
        "face_inventory:sha256__*",
        "-s",
        "face_inventory__id__unique",
    ]
    ok = runner.invoke(app, ["checks", "run", *selection])
    assert ok.exit_code == 0, ok.output
    flat = " ".join(ok.output.split())
    assert "gender__accepted_values" in flat and "sha256__regex" in flat and "FAIL" not in flat
    assert "id__unique" in flat and "row_count" not in flat  # not selected
    assert "0 failed" in flat and "0 skipped" in flat

    db = FactoryDatabase(Settings.from_env().database_url)
    with db.session() as session:
        session.execute(update(Face).values(gender_confidence=-1.0))
    bad = runner.invoke(app, ["checks", "run", "-s", "gender_confidence__range"])
    assert bad.exit_code == 1
    assert "FAIL" in bad.output and "1 error-severity check(s) failed" in bad.output

    unknown = runner.invoke(app, ["checks", "run", "--select", "no_such_check"])
    assert unknown.exit_code == 1 and "matches no check" in unknown.output


def test_demo_confirms_the_row_count_the_prompt_asks_for(synth_home, monkeypatch) -> None:
    monkeypatch.setenv("SYNTH_FACE_SIZE", "64")
    monkeypatch.setenv("SYNTH_TABULAR_EMBEDDER", "hashing")
    result = runner.invoke(
        app,
        ["demo", "--per-bucket", "1", "--no-dataset", "--no-persona", "--no-flux", "--no-images"],
    )
    assert result.exit_code == 0, result.output
    assert "confirming the 10,000 rows the prompt asks for" in result.output
    assert "10,000 rows in" in result.output


def test_printable_escapes_control_characters_and_markup() -> None:
    from synth_pipelines.cli.demo import printable

    shown = printable("ok\x00\x1b[31m [bold]x[/bold]\u200b")
    assert "\x00" not in shown and "\x1b" not in shown and "\u200b" not in shown
    assert "\\x00" in shown and "\\x1b" in shown and "\\u200b" in shown
    assert "\\[bold]" in shown  # rich shows it literally
