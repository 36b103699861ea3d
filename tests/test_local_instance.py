"""The local instance's dagster.yaml: written once with telemetry off, loaded by Dagster's own
loader, never overwritten; the command the Makefile runs writes it."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

from synth_pipelines.local_instance import prepare_dagster_home


def test_a_fresh_home_gets_a_dagster_yaml_with_telemetry_off(tmp_path) -> None:
    home = prepare_dagster_home(tmp_path / "dagster")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.telemetry_enabled is False
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    prepare_dagster_home(home)  # an edited file is kept
    assert "enabled: true" in (home / "dagster.yaml").read_text()


def test_the_makefile_command_writes_it(tmp_path) -> None:
    target = tmp_path / "home" / "dagster"
    subprocess.run(
        [sys.executable, "-m", "synth_pipelines.local_instance", str(target)], check=True
    )
    assert "enabled: false" in (target / "dagster.yaml").read_text()
    usage = subprocess.run(
        [sys.executable, "-m", "synth_pipelines.local_instance"], capture_output=True, text=True
    )
    assert usage.returncode != 0 and "usage:" in usage.stderr
