"""The code location as Dagster's own CLI and `dagster dev` load it, from the repo root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

REPO = Path(__file__).parent.parent
DAGSTER = str(Path(sys.executable).parent / "dagster")


def dagster_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYNTH_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    return subprocess.run(
        [DAGSTER, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )


def test_definitions_validate_from_the_repo_root(synth_home) -> None:
    result = dagster_cli("definitions", "validate", home=synth_home)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        "Validation successful for code location synth_pipelines" in result.stdout + result.stderr
    )


def test_backfill_of_all_buckets_from_the_command_line(synth_home) -> None:
    result = dagster_cli(
        "job",
        "backfill",
        "-m",
        "synth_pipelines.definitions",
        "-j",
        "face_inventory_refill",
        "--all",
        "true",
        "--noprompt",
        home=synth_home,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Launched backfill job" in result.stdout + result.stderr
    with dg.DagsterInstance.get() as instance:
        (backfill,) = instance.get_backfills()
    assert backfill.job_name == "face_inventory_refill"
    assert len(backfill.partition_names) == 10
