"""Runs of the code location's jobs, launched as a deployment launches them: each in a process of
its own, on the instance in DAGSTER_HOME, with the executor the environment's settings pick
(SYNTH_EXECUTOR=celery: each step a task for the Celery workers).

    python -m tests.celery_runs SPEC.json RESULT.json

SPEC is a list of {"job", "tags", "run_config"}; RESULT, written when every run has ended, the
list of {"run_id", "success"} in the same order. The definitions are imported once and each run
forked from here, so twenty runs do not import them twenty times.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
from pathlib import Path

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository

REPO = Path(__file__).resolve().parent.parent


def _repository() -> ReconstructableRepository:
    return ReconstructableRepository.for_module(
        "synth_pipelines.definitions", "defs", working_directory=str(REPO)
    )


def execute(run: dict) -> dict:
    """One run of `run["job"]`, to its end, on the instance in DAGSTER_HOME."""
    job = _repository().get_reconstructable_job(run["job"])
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(
            job,
            instance=instance,
            run_config=run.get("run_config") or {},
            tags=run.get("tags") or {},
            raise_on_error=False,
        )
        return {"run_id": result.run_id, "success": result.success}


def main(spec_path: str, result_path: str) -> None:
    runs = json.loads(Path(spec_path).read_text())
    import synth_pipelines.definitions  # noqa: F401  (once, before forking)

    pool = multiprocessing.get_context("fork").Pool(len(runs))
    try:
        results = pool.map(execute, runs, chunksize=1)
    finally:
        pool.close()  # the workers exit on their own: no KeyboardInterrupt noise from terminate()
        pool.join()
    Path(result_path).write_text(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:3])
