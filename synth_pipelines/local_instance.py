"""The local Dagster instance's home (DAGSTER_HOME under SYNTH_HOME): a dagster.yaml with
telemetry off, written once, so `make ui`, `synth demo` and the CLI start without the
"no dagster.yaml found" warning or the telemetry banner. An existing file is never touched.

    python -m synth_pipelines.local_instance DAGSTER_HOME
"""

from __future__ import annotations

import sys
from pathlib import Path

LOCAL_DAGSTER_YAML = """\
# The local instance of synth_pipelines (written by `make` or `synth`; edit freely, it is kept).
# SQLite storage under this directory; production settings are in deploy/dagster.yaml.
telemetry:
  enabled: false
"""


def prepare_dagster_home(home: Path) -> Path:
    """Create `home` and its dagster.yaml (telemetry off) unless one is there; returns `home`."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(LOCAL_DAGSTER_YAML, encoding="utf-8")
    return home


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m synth_pipelines.local_instance DAGSTER_HOME")
    prepare_dagster_home(Path(sys.argv[1]).expanduser().absolute())
