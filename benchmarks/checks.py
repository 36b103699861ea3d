"""Checks benchmark: the full check suite on a 1,000,000-row tabular output and on 10,000
face-inventory rows, and the identity-leakage scan in faces/s. Prints a markdown table.

    python benchmarks/checks.py [--rows 1000000] [--faces 10000] [--scan 200]

Tabular: the output of a real tabular job (run_tabular_job), read back from its Parquet file,
then its schema checks (pyarrow) and the YAML tests (Great Expectations; the shipped
tabular_dataset.yml plus one test of every kind on the bench columns). Inventory: face rows
(random labels and hashes) through the shipped face_inventory.yml tests, the perceptual
near-duplicate scan and label agreement. Identity: dlib embeddings of simulator faces
(2 worker processes) compared with a reference set.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import time
from datetime import date
from pathlib import Path

from synth_pipelines.core.cpus import cpu_description

sys.path.insert(0, str(Path(__file__).parent))

BENCH_TESTS = """
assets:
  - name: tabular_dataset
    columns:
      - name: id
        tests: [not_null, unique]
      - name: amount
        tests: [{range: {min: 0.01, max: 10000}}]
      - name: category
        tests:
          - accepted_values: {values: [food, travel, tech, home]}
          - distribution: {shares: {food: 0.5, travel: 0.25, tech: 0.125, home: 0.125}}
      - name: quantity
        tests: [{range: {min: 0, max: 100, where: "active == True"}}]
      - name: timestamp
        tests: [{freshness: {max_age: 1000d, severity: warn}}]
      - name: full_name
        tests: [{expect_column_value_lengths_to_be_between: {min_value: 3, max_value: 80}}]
"""


def tabular(rows: int) -> dict:
    from tabular import SCHEMA

    from synth_pipelines.core.checks.expectations import run_tests
    from synth_pipelines.core.checks.spec import load_specs
    from synth_pipelines.core.checks.tables import TABLES, load_tabular_output
    from synth_pipelines.core.checks.tabular_schema import schema_checks
    from synth_pipelines.core.storage.models import TabularJob
    from synth_pipelines.core.storage.object_store import LocalObjectStore
    from synth_pipelines.core.tabular.jobs import JobParams
    from synth_pipelines.core.tabular.runner import run_tabular_job
    from synth_pipelines.core.tabular.schema import TableSchema
    from synth_pipelines.dbt_like_checks.compiler import PACKAGED

    schema = TableSchema.parse(SCHEMA)
    workdir = Path(tempfile.mkdtemp(prefix="synth_bench_checks_"))
    store = LocalObjectStore(workdir)
    params = JobParams(
        total_rows=rows, chunk_size=125_000, max_workers=2, dedup_threshold=1.0, seed=1
    )
    result = run_tabular_job(schema, params, store=store, key_prefix="bench")
    (workdir / "bench.yml").write_text(textwrap.dedent(BENCH_TESTS))
    specs = load_specs([PACKAGED / "tabular_dataset.yml", workdir / "bench.yml"], TABLES)
    import great_expectations  # noqa: F401  (import once, outside the timing: ~5 s)

    started = time.perf_counter()
    job = TabularJob(id="bench", outputs=result.outputs)
    frame = load_tabular_output(store, job, set().union(*(s.columns_read for s in specs)))
    loaded = time.perf_counter()
    outcomes = schema_checks(schema, result.table)
    yaml = run_tests(specs, frame)
    seconds = time.perf_counter() - started
    return {
        "rows": len(frame),
        "checks": len(outcomes) + len(yaml),
        "read_s": loaded - started,
        "seconds": seconds,
        "failed": [o.spec.name for o in yaml if not o.passed and o.applicable],
    }


def inventory(faces: int) -> dict:
    import numpy as np
    import pandas as pd

    from synth_pipelines.core.checks import faces as face_checks
    from synth_pipelines.core.checks.expectations import run_tests
    from synth_pipelines.core.checks.spec import load_specs, spec_files
    from synth_pipelines.core.checks.tables import TABLES
    from synth_pipelines.core.faces.buckets import AGE_GROUPS, GENDERS
    from synth_pipelines.dbt_like_checks.compiler import PACKAGED

    rng = np.random.default_rng(7)
    gender, age = rng.choice(GENDERS, faces), rng.choice(AGE_GROUPS, faces)
    frame = pd.DataFrame(
        {
            "id": [f"{i:032x}" for i in range(faces)],
            "gender": gender,
            "age_group": age,
            "intended_gender": gender,
            "intended_age_group": age,
            "status": rng.choice(["available", "delivered"], faces, p=[0.9, 0.1]),
            "sha256": [f"{i:064x}" for i in range(faces)],
            "object_key": [f"faces/{i}.png" for i in range(faces)],
            "phash": rng.integers(-(2**63), 2**63 - 1, faces, dtype=np.int64),
            "gender_confidence": rng.random(faces),
            "age_confidence": rng.random(faces),
            "face_detected": True,
            "predicted_gender": gender,
            "predicted_age_group": age,
            "width": 256,
            "request_id": None,
            "created_at": pd.Timestamp.now(tz="UTC"),
        }
    )
    specs = [s for s in load_specs(spec_files(PACKAGED), TABLES) if s.asset == "face_inventory"]
    requests = pd.DataFrame({"id": [f"{i:032x}" for i in range(100)]})
    started = time.perf_counter()
    outcomes = run_tests(specs, frame, related=lambda _: requests)
    face_checks.near_duplicates(frame, 4, 0.01)
    face_checks.label_agreement(frame, 0.5)
    return {"rows": faces, "checks": len(outcomes) + 2, "seconds": time.perf_counter() - started}


def identity(n: int) -> dict:
    import numpy as np
    from identity_scan import make_faces

    from synth_pipelines.core.privacy.identity import FaceEmbedder, embed_many, identity_matches

    datas = make_faces(n, 256)
    embedder = FaceEmbedder()
    reference = np.stack([embedder.embed_bytes(datas[0])] * 20)
    started = time.perf_counter()
    vectors = embed_many(datas, workers=2, embedder=embedder)
    identity_matches(np.stack([v for v in vectors if v is not None]), reference, 0.6)
    seconds = time.perf_counter() - started
    return {"faces": n, "seconds": seconds, "faces_per_s": n / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--faces", type=int, default=10_000)
    parser.add_argument("--scan", type=int, default=200, help="faces for the identity scan")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"# checks benchmark, {date.today()}, "
          f"{cpu_description()}\n")  # fmt: skip
    print("| what | size | checks | seconds | rate |\n|---|---|---|---|---|")
    t = tabular(args.rows)
    print(f"| tabular output: schema + YAML checks (read {t['read_s']:.2f} s incl.) | "
          f"{t['rows']:,} rows | {t['checks']} | {t['seconds']:.2f} | "
          f"{t['rows'] / t['seconds']:,.0f} rows/s |")  # fmt: skip
    i = inventory(args.faces)
    rate = i["rows"] / i["seconds"]
    print(f"| face inventory: YAML tests, near-duplicates, label agreement | {i['rows']:,} rows "
          f"| {i['checks']} | {i['seconds']:.2f} | {rate:,.0f} rows/s |")  # fmt: skip
    s = identity(args.scan)
    print(f"| identity-leakage scan (dlib, 2 workers, incl. start-up) | {s['faces']} faces | 1 "
          f"| {s['seconds']:.2f} | {s['faces_per_s']:.1f} faces/s |")  # fmt: skip
    if t["failed"]:
        print(f"\nfailing YAML tests on the bench table: {t['failed']}")


if __name__ == "__main__":
    main()
