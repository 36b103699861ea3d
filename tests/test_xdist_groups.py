"""The suite's own set-up: modules marked `xdist_group` (one live server and browser, the Celery
workers on the shared broker) must run on one xdist worker. pytest 9.2 with pytest-xdist 3.8
silently split them (xdist renamed a node id pytest no longer reads); this runs a real
two-worker session on a module of four grouped tests and checks they shared a worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

GROUPED = """
import json, os
import pytest

pytestmark = pytest.mark.xdist_group("together")


@pytest.mark.parametrize("n", range(4))
def test_records_its_worker(n):
    out = os.path.join(os.environ["GROUPED_OUT"], f"worker-{n}.json")
    with open(out, "w") as f:
        f.write(json.dumps(os.environ["PYTEST_XDIST_WORKER"]))
"""


def test_a_grouped_module_runs_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --dist loadgroup\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-q", "-p", "no:cacheprovider",
         f"--basetemp={tmp_path / 'base'}", str(tmp_path / "test_grouped.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "GROUPED_OUT": str(tmp_path)},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    workers = {json.loads(p.read_text()) for p in tmp_path.glob("worker-*.json")}
    assert len(list(tmp_path.glob("worker-*.json"))) == 4
    assert len(workers) == 1, f"the grouped tests ran on {sorted(workers)}"
