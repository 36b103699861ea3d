"""The code location as Dagster's own CLI and `dagster dev` load it, from the repo root: the
README's Dagster commands, run as written against `workspace.yaml` (what `make ui` loads)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS
from synth_pipelines.core.faces.inventory import inventory_levels
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.local_instance import prepare_dagster_home
from synth_pipelines.settings import Settings

REPO = Path(__file__).parent.parent
BIN = Path(sys.executable).parent
DAGSTER = str(BIN / "dagster")
BACKFILL_TIMEOUT = 300


def environment(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "SYNTH_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), **extra}


def dagster_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, *args],
        cwd=REPO,
        env=environment(home),
        capture_output=True,
        text=True,
        timeout=180,
    )


def readme_command(prefix: str) -> list[str]:
    """The one README line that starts with `prefix`, as argv, `.venv/bin/` pointing here."""
    lines = [
        line.strip()
        for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines()
        if line.strip().startswith(prefix)
    ]
    assert len(lines) == 1, f"README has {len(lines)} lines starting {prefix!r}"
    argv = shlex.split(lines[0], comments=True)
    program = argv[0]
    if program.startswith(".venv/bin/"):
        program = str(BIN / Path(program).name)
    return [program, *argv[1:]]


def test_definitions_validate_from_the_repo_root(synth_home) -> None:
    result = dagster_cli("definitions", "validate", "-w", "workspace.yaml", home=synth_home)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        "Validation successful for code location synth_pipelines" in result.stdout + result.stderr
    )


def test_backfill_command_in_the_readme_runs_against_the_workspace(synth_home) -> None:
    """The README's backfill, launched as written, then run by the daemon that `make ui` starts,
    from the same workspace: all ten refills succeed. (With `-m synth_pipelines.definitions` the
    backfill named a code location `dagster dev` does not serve, and every run failed with
    DagsterCodeLocationNotFoundError while the backfill showed Completed.)"""
    env = environment(synth_home, SYNTH_TARGET_PER_BUCKET="1", SYNTH_FACE_SIZE="64")
    prepare_dagster_home(synth_home / "dagster")
    argv = readme_command(".venv/bin/dagster job backfill")
    launched = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert launched.returncode == 0, launched.stderr[-2000:]
    assert "Launched backfill job" in launched.stdout + launched.stderr
    with dg.DagsterInstance.from_config(str(synth_home / "dagster")) as instance:
        (backfill,) = instance.get_backfills()
        assert backfill.job_name == "face_inventory_refill"
        assert len(backfill.partition_names) == 10
        origin = backfill.partition_set_origin.repository_origin.code_location_origin
        assert origin.location_name == "synth_pipelines"  # workspace.yaml's location

        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            runs = wait_for_backfill_runs(instance, backfill.backfill_id, daemon)
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
    failed = [(r.tags.get("dagster/partition"), r.status.value) for r in runs if not r.is_success]
    assert failed == [] and len(runs) == 10
    levels = inventory_levels(FactoryDatabase(Settings.from_env().database_url))
    assert levels == dict.fromkeys(ALL_BUCKET_KEYS, 1)


def wait_for_backfill_runs(
    instance: dg.DagsterInstance, backfill_id: str, daemon: subprocess.Popen
) -> list[dg.DagsterRun]:
    """The backfill's runs once all ten are finished (or the time is up)."""
    runs_filter = dg.RunsFilter(tags={"dagster/backfill": backfill_id})
    deadline = time.monotonic() + BACKFILL_TIMEOUT
    runs: list[dg.DagsterRun] = []
    while time.monotonic() < deadline:
        assert daemon.poll() is None, f"the daemon exited: {daemon.stderr.read()[-2000:]}"
        runs = list(instance.get_runs(runs_filter))
        if len(runs) == 10 and all(run.is_finished for run in runs):
            return runs
        time.sleep(2)
    return runs
