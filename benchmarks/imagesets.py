"""Image sets, every stage: runs the four stage benchmarks in turn, each in its own process, and
prints their tables (`python benchmarks/imagesets.py [--quick]`):

- benchmarks/imagesets_profile.py: profiling 512-px JPEGs, images/s (target >= 100 on 2 cores,
  without OCR), and peak RSS at two set sizes (flat: within 20%);
- benchmarks/imagesets_generate.py: images/s per backend (simulation scenes and faces, tiny GAN,
  tiny diffusion);
- benchmarks/imagesets_validate.py: quality + fidelity + privacy, images/s (target >= 100);
- benchmarks/imagesets_export.py: MB/s per format (target >= 100) and memory at two sizes.

`--quick` runs each at a smaller size (a check that they run, not figures to record).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAGES = {
    "profile": (["imagesets_profile.py"], ["--images", "60", "--rss", "100", "400"]),
    "generate": (
        ["imagesets_generate.py"],
        ["--count", "20", "--repeats", "1", "--model-count", "4"],
    ),
    "validate": (["imagesets_validate.py"], ["--real", "200", "--synth", "200"]),
    "export": (["imagesets_export.py"], ["--images", "60", "--repeats", "1", "--skip-memory"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run")
    parser.add_argument("--only", choices=sorted(STAGES), action="append", help="one stage")
    args = parser.parse_args()
    failed = []
    for stage in args.only or STAGES:
        script, quick = STAGES[stage]
        command = [sys.executable, str(HERE / script[0]), *(quick if args.quick else [])]
        print(f"\n## {stage}: {' '.join(command[1:])}\n", flush=True)
        if subprocess.run(command, check=False).returncode:
            failed.append(stage)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
