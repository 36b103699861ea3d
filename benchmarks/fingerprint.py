"""Fingerprints of what the factory makes from fixed seeds: sha256 of the faces a seeded refill
of every bucket stores, and of the Parquet and CSV of a seeded tabular job, each made through
real Dagster runs. Equal fingerprints before and after a refactor mean the same bytes.

    python benchmarks/fingerprint.py            # prints a table
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from pathlib import Path

PROMPT = "Generate 10k financial transactions with user ID, amount, currency, and timestamp"


def _isolated_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="synth_fingerprint_"))
    os.environ["SYNTH_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


def faces(per_bucket: int, seed: int) -> tuple[str, int]:
    """sha256 over the sorted (bucket, label, sha256 of the stored bytes) of every face."""
    import dagster as dg

    from synth_pipelines.core.faces.buckets import ALL_BUCKETS
    from synth_pipelines.core.storage.database import FactoryDatabase
    from synth_pipelines.core.storage.models import Face
    from synth_pipelines.definitions import build_definitions
    from synth_pipelines.lines.faces.sensors import REFILL_JOB, refill_run_config
    from synth_pipelines.partitions import partition_for_bucket
    from synth_pipelines.settings import Settings

    settings = Settings.from_env()
    job = build_definitions(settings).resolve_job_def(REFILL_JOB)
    instance = dg.DagsterInstance.get()
    for bucket in ALL_BUCKETS:
        result = job.execute_in_process(
            partition_key=str(partition_for_bucket(bucket)),
            run_config=refill_run_config(per_bucket, seed=seed),
            instance=instance,
        )
        assert result.success
    store_root = settings.store.root
    db = FactoryDatabase(settings.database_url)
    with db.session() as session:
        rows = sorted(
            f"{face.intended_gender}/{face.intended_age_group} {face.gender}/{face.age_group} "
            + hashlib.sha256((store_root / face.object_key).read_bytes()).hexdigest()
            for face in session.query(Face)
        )
    return hashlib.sha256("\n".join(rows).encode()).hexdigest(), len(rows)


def tabular(rows: int, seed: int) -> dict[str, str]:
    """sha256 of the Parquet and the CSV of a seeded job drafted from PROMPT (offline drafter)."""
    import dagster as dg
    from fastapi.testclient import TestClient

    from synth_pipelines.api.app import create_app
    from synth_pipelines.definitions import build_definitions
    from synth_pipelines.in_process import run_tabular_jobs_in_process
    from synth_pipelines.settings import Settings

    settings = Settings.from_env()
    client = TestClient(create_app(settings))
    job = client.post("/tabular/jobs", json={"prompt": PROMPT}).json()
    confirmed = client.post(
        f"/tabular/jobs/{job['id']}/confirm",
        json={"total_rows": rows, "chunk_size": rows // 4, "seed": seed},
    )
    assert confirmed.status_code == 200, confirmed.text
    runs, _ = run_tabular_jobs_in_process(build_definitions(settings), dg.DagsterInstance.get())
    assert runs and all(run.success for run in runs)
    return {
        fmt: hashlib.sha256(
            client.get(f"/tabular/jobs/{job['id']}/download", params={"format": fmt}).content
        ).hexdigest()
        for fmt in ("parquet", "csv")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=6, help="faces per bucket")
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=20261206)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _isolated_home()
    os.environ["SYNTH_FACE_SIZE"] = "128"
    face_hash, count = faces(args.faces, args.seed)
    table = tabular(args.rows, args.seed)
    print("| what | seed | size | sha256 |\n|---|---|---|---|")
    print(f"| faces (10 buckets) | {args.seed} | {count} faces at 128 px | {face_hash} |")
    for fmt, digest in table.items():
        print(f"| tabular job, {fmt} | {args.seed} | {args.rows:,} rows | {digest} |")


if __name__ == "__main__":
    main()
