"""Run a Python snippet in fresh processes under several PYTHONHASHSEEDs: what must not depend on
set order (pseudonyms, generated chunks) prints the same in each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def stdout_per_hash_seed(script: str, argument: str, seeds: tuple[str, ...]) -> set[str]:
    """The distinct outputs of `python -c script argument` run from the repository root (so
    `tests.*` imports), once per hash seed: one element when nothing follows set order."""
    return {
        subprocess.run(
            [sys.executable, "-c", script, argument],
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in seeds
    }
