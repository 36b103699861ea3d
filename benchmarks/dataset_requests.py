"""Dataset benchmark: request-to-ready for 1,000 faces through the API and a real Dagster run,
packaging MB/s, download and verification. Prints a table: `python benchmarks/dataset_requests.py`.

Targets on a 2-core machine: <= 10 s request-to-ready for 1,000 faces at 256 px (the sensor
interval excluded, reported separately), packaging >= 100 MB/s.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from synth_pipelines.core.cpus import cpu_description


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=1000, help="faces in the request")
    parser.add_argument("--size", type=int, default=256, help="stored and delivered px")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="synth_bench_datasets_"))
    os.environ.update(
        SYNTH_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        SYNTH_FACE_SIZE=str(args.size),
        HF_HUB_OFFLINE="1",
    )
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

    import dagster as dg

    from synth_pipelines.api.app import create_app
    from synth_pipelines.api.server import running_server
    from synth_pipelines.client.datasets import DatasetClient
    from synth_pipelines.core.faces.buckets import ALL_BUCKETS
    from synth_pipelines.definitions import build_definitions
    from synth_pipelines.in_process import package_requests_in_process
    from synth_pipelines.lines.faces.sensors import REFILL_JOB, refill_run_config
    from synth_pipelines.partitions import partition_for_bucket
    from synth_pipelines.settings import Settings

    settings = Settings.from_env()
    defs = build_definitions(settings)
    buckets = ALL_BUCKETS[:5]
    per_bucket = args.faces // len(buckets)
    rows: list[tuple[str, str, str]] = []
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with dg.DagsterInstance.get() as instance:
        tick = time.perf_counter()
        for bucket in buckets:
            defs.resolve_job_def(REFILL_JOB).execute_in_process(
                partition_key=str(partition_for_bucket(bucket)),
                run_config={**refill_run_config(per_bucket), **quiet},
                instance=instance,
            )
        fill = time.perf_counter() - tick
        rows.append((f"fill inventory ({per_bucket * len(buckets)} faces)", f"{fill:.1f} s", ""))

        with running_server(create_app(settings)) as url:
            client = DatasetClient(url)
            spec = {"buckets": {b.key: per_bucket for b in buckets}, "image_size": args.size}
            started = time.perf_counter()
            created = client.submit(spec)
            runs, _ = package_requests_in_process(defs, instance)
            ready = client.wait(created["id"], timeout=300, poll=0.05)
            request_to_ready = time.perf_counter() - started
            (event,) = runs[0].get_asset_materialization_events()
            metadata = event.event_specific_data.materialization.metadata
            out = home / "download"
            tick = time.perf_counter()
            archive = client.download(created["download_url"], out)
            download = time.perf_counter() - tick
            tick = time.perf_counter()
            client.verify_and_extract(archive, out)
            verify = time.perf_counter() - tick
    megabytes = metadata["bytes"].value / 1e6
    delivered = sum(ready["counts"]["delivered"].values())
    rows += [
        (
            f"request-to-ready, {delivered} faces @ {args.size}px",
            f"{request_to_ready:.2f} s",
            "<= 10 s (sensor interval excluded)",
        ),
        (
            "  queue-to-ready recorded by the request",
            f"{ready['queue_to_ready_seconds']:.2f} s",
            "",
        ),
        (
            "  inside the packaging asset",
            f"{metadata['seconds'].value:.2f} s",
            "reserve+archive+ready",
        ),
        ("packaging throughput", f"{metadata['mb_per_s'].value:.0f} MB/s", ">= 100 MB/s"),
        ("archive size", f"{megabytes:.1f} MB", "zip, images stored"),
        ("download over HTTP (loopback)", f"{megabytes / download:.0f} MB/s", f"{download:.2f} s"),
        ("verify manifest + unpack", f"{verify:.2f} s", ""),
        (
            "sensor interval (added in production)",
            f"<= {settings.datasets.sensor_interval} s",
            "SYNTH_REQUEST_SENSOR_INTERVAL",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(
        f"# datasets benchmark  {time.strftime('%Y-%m-%d')}  {platform.node()}  "
        f"{cpu_description()}  python {platform.python_version()}"
    )
    print(f"{'measure':<{width}}  {'value':>12}  target/notes")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")


if __name__ == "__main__":
    main()
