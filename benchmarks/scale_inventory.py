"""Inventory scale (issue 19): request-to-ready for 1,000 faces at 10k, 100k and 1M faces in
PostgreSQL, and the reservation query's plan. Prints a table and the EXPLAIN:
`python benchmarks/scale_inventory.py [--sizes 10000,100000,1000000] [--pg-url URL]`.

A throwaway PostgreSQL database is migrated and filled in bulk (COPY) to each size in turn,
faces spread evenly over the ten buckets. The oldest faces, the ones requests take first, are
real PNGs in a local object store (their sha256 checked when packaged); the rest are rows
only (what grows is the database, not the disk; the near-duplicate band table is not filled,
the reservation path does not read it). At each size, `--repeats` exclusive requests for
1,000 faces (100 from each bucket) go through the real packaging use case (`package_request`:
reserve with row locks, archive, mark ready), and the reservation alone (`reserve_faces`,
released again) is timed too. Target: request-to-ready at 1M within 1.5x of its time at 10k;
the reservation query on an index.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth_pipelines.core.cpus import cpu_description

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"
COLUMNS = (
    "id", "gender", "age_group", "label_source", "status", "object_key", "sha256", "phash",
    "width", "height", "generator", "seed", "batch_id", "intended_gender", "intended_age_group",
    "attributes", "classifier", "face_detected", "created_at",
)  # fmt: skip


def png(n: int) -> bytes:
    """Face n's image: a 64 px PNG of its own colour (so its own sha256)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (n % 256, n // 256 % 256, n // 65536 % 256)).save(buffer, "PNG")
    return buffer.getvalue()


def fill(url: str, start: int, stop: int, store, real_below: int) -> float:
    """Faces start..stop-1 by COPY, spread over the buckets, those under `real_below` with their
    image in `store`; seconds taken."""
    import psycopg

    from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS

    buckets = [key.split("/") for key in ALL_BUCKET_KEYS]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    began = time.perf_counter()
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    statement = f"COPY faces ({', '.join(COLUMNS)}) FROM STDIN"
    with psycopg.connect(plain) as conn, conn.cursor().copy(statement) as copy:
        for n in range(start, stop):
            gender, age_group = buckets[n % len(buckets)]
            sha = f"{n:064x}"
            if n < real_below:
                data = png(n)
                store.put_bytes(f"bench/{n}.png", data, content_type="image/png")
                sha = hashlib.sha256(data).hexdigest()
            copy.write_row(
                (
                    f"{n:032x}", gender, age_group, "intended", "available", f"bench/{n}.png",
                    sha, n, 64, 64, "bench", n, f"batch-{n // 10_000}", gender, age_group, "{}",
                    "bench", True, base + timedelta(seconds=n),
                )
            )  # fmt: skip
    with psycopg.connect(plain) as conn:
        conn.execute("ANALYZE faces")
    return time.perf_counter() - began


def explain(db, bucket: str, count: int) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the reservation's query for available faces, as
    reserve_faces builds it (the pool nearly every face comes from)."""
    from sqlalchemy import select, text

    from synth_pipelines.core.storage.models import Face

    gender, age_group = bucket.split("/")
    query = (
        select(Face)
        .where(Face.gender == gender, Face.age_group == age_group, Face.status == "available")
        .order_by(Face.created_at, Face.id)
        .limit(count)
        .with_for_update(skip_locked=True)
    )
    sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
    with db.engine.connect() as conn:
        rows = conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")).all()
        conn.rollback()
    return "\n".join(row[0] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--faces", type=int, default=1000, help="faces per request")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    import psycopg

    from synth_pipelines.core.delivery.packaging import Ready, package_request
    from synth_pipelines.core.delivery.requests import create_request
    from synth_pipelines.core.delivery.reservations import release_reservations, reserve_faces
    from synth_pipelines.core.delivery.spec import DatasetSpec
    from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS
    from synth_pipelines.core.storage.database import FactoryDatabase
    from synth_pipelines.core.storage.object_store import LocalObjectStore

    name = f"synth_scale_{uuid.uuid4().hex[:10]}"
    admin = args.pg_url.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{args.pg_url}/{name}"
    home = Path(tempfile.mkdtemp(prefix="synth_scale_"))
    db = FactoryDatabase(url)
    try:
        db.upgrade()
        store = LocalObjectStore(home / "objects")
        per_bucket = args.faces // len(ALL_BUCKET_KEYS)
        # every face a request of the run takes is among the oldest ones
        real = len(ALL_BUCKET_KEYS) * per_bucket * args.repeats * len(sizes)
        print(f"# scale_inventory.py — {time.strftime('%Y-%m-%d')}, {cpu_description()}, "
              f"nproc {os.cpu_count()}")  # fmt: skip
        print(f"# Python {platform.python_version()}; PostgreSQL; {args.faces:,} faces a "
              f"request, exclusive, 100 from each bucket; median of {args.repeats}")  # fmt: skip
        print()
        print("| inventory | fill s | reserve ms | request-to-ready s | vs smallest |")
        print("|---:|---:|---:|---:|---:|")
        filled, first, plan = 0, None, ""
        buckets = {key: per_bucket for key in ALL_BUCKET_KEYS}
        spec = DatasetSpec.parse({"buckets": buckets, "image_size": 64}, 10**9)
        for size in sizes:
            fill_s = fill(url, filled, size, store, real)
            filled = size
            reserves, readies = [], []
            for _ in range(args.repeats):
                probe = create_request(db, spec)
                began = time.perf_counter()
                held = reserve_faces(db, probe.id, spec, lease_seconds=600)
                reserves.append(time.perf_counter() - began)
                assert held.complete, held.shortfall
                release_reservations(db, probe.id)
                request = create_request(db, spec)
                began = time.perf_counter()
                outcome = package_request(db, store, request.id, "bench", lease_seconds=600,
                                          ttl_seconds=3600)  # fmt: skip
                readies.append(time.perf_counter() - began)
                assert isinstance(outcome, Ready), outcome
            ready = float(np.median(readies))
            first = first or ready
            print(
                f"| {size:,} | {fill_s:.1f} | {np.median(reserves) * 1000:.1f} | {ready:.2f} | "
                f"{ready / first:.2f}x |",
                flush=True,
            )
            plan = explain(db, "female/adult", per_bucket)
        print()
        print(f"EXPLAIN (ANALYZE, BUFFERS) of the reservation query at {filled:,} faces:")
        print("```")
        print(plan)
        print("```")
    finally:
        db.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
