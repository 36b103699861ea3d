"""The `synth` command through its real entry point (Typer's runner, in process)."""

from __future__ import annotations

import dagster as dg
from typer.testing import CliRunner

from synth_pipelines.cli import app

runner = CliRunner()


def test_demo_fills_every_bucket_through_dagster_runs(synth_home, monkeypatch) -> None:
    monkeypatch.setenv("SYNTH_FACE_SIZE", "128")
    result = runner.invoke(app, ["demo", "--per-bucket", "2"])
    assert result.exit_code == 0, result.output
    assert "female/young_adult" in result.output
    assert "faces/s end to end" in result.output
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
    assert len(runs) == 10
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    assert {run.tags["synth/trigger"] for run in runs} == {"demo"}

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
