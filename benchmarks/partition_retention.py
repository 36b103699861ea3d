"""Retention at the scale of dagster issue 16260 (a SQLite instance failing near 36k dynamic
partitions): N dataset requests with a partition each, R of them expired 40 days ago, on a
SQLite Dagster instance and a SQLite factory DB; the retention path partition_retention_job runs
removes the R and keeps the rest.

Reports: the bulk add, a read of every partition key at N, the retention pass (the factory-DB
query over the N keys in chunks, then one DELETE per retired key: Dagster's only way to remove a
partition), its rate, and a read after it.

Run: .venv/bin/python benchmarks/partition_retention.py [N] [R]   (default 40000 2000)
"""

import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg
from sqlalchemy import insert

from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import DatasetRequest, new_id
from synth_pipelines.lines.datasets.sensors import retention
from synth_pipelines.lines.retention import retire_partitions


def main(n: int, retired: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test(temp_dir=tmp) as instance:
        db = FactoryDatabase(f"sqlite:///{Path(tmp) / 'factory.db'}")
        db.upgrade()
        expired = utcnow() - timedelta(days=40)
        rows = [
            {
                "id": new_id(),
                "spec": {"buckets": {"female/adult": 1}},
                "status": "expired" if i < retired else "pending",
                "total": 1,
                "expires_at": expired,
            }
            for i in range(n)
        ]
        with db.session() as session:
            session.execute(insert(DatasetRequest), rows)
        keys = [row["id"] for row in rows]

        started = time.perf_counter()
        instance.add_dynamic_partitions(retention.name, keys)
        added = time.perf_counter() - started

        started = time.perf_counter()
        assert len(instance.get_dynamic_partitions(retention.name)) == n
        read = time.perf_counter() - started

        report = retire_partitions(instance, db, retention, days=30)
        assert len(report.removed) == retired and report.kept == n - retired

        started = time.perf_counter()
        assert len(instance.get_dynamic_partitions(retention.name)) == n - retired
        read_after = time.perf_counter() - started
        db.dispose()

    print(f"partitions: {n:,} dataset_requests, {retired:,} expired; SQLite instance + factory DB")
    print(f"bulk add:         {added:8.2f} s")
    print(f"read all keys:    {read:8.3f} s")
    rate = retired / report.seconds
    print(f"retention pass:   {report.seconds:8.2f} s ({rate:,.0f} removed/s)")
    print(f"read after:       {read_after:8.3f} s")


if __name__ == "__main__":
    args = [int(arg) for arg in sys.argv[1:3]]
    main(*(args + [40_000, 2_000][len(args) :]))
