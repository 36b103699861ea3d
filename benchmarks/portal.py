"""Portal benchmark (issue 18): the server-side time of each portal page with a full factory DB.
Prints a table: `python benchmarks/portal.py [--requests 10000 --jobs 1000 --personas 100]`.

A fresh SYNTH_HOME (SQLite) is filled with `--requests` dataset requests (most ready, some
pending, packaging and backordered, as a busy factory has them), `--jobs` tabular jobs drafted
from prompts by the offline drafter (a third confirmed, a third completed) and `--personas`
personas with their consent records, shared among ten owners, and `--image-sets` image sets
run for real by the image set line (a 24-image demo set each); the admin pages read a local
Dagster instance, as under `synth serve`. Then each page is asked for
`--samples` times through the app in this process (Starlette's test client: no sockets, so
the time is the server's — routing, session check, DB reads, template — plus the client's
fraction of a millisecond), after a warm-up, signed in as an owner or as an admin as the page
needs. Target on these 2 cores: p95 <= 150 ms on every page.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.cpus import cpu_description

ADMIN_TOKEN = "portal-benchmark-admin-token"
OWNERS = [f"owner{i}" for i in range(10)]
PROMPTS = [
    "an e-commerce orders table: order id, customer email, total price in EUR, shipping country, "
    "order status pending/shipped/delivered/returned",
    "IoT sensor readings for 20 devices: device id, timestamp, temperature celsius around 21 with "
    "std 2, humidity percent, battery voltage",
    "employees: name, department one of sales, engineering or support, salary in USD, hire date",
    "patients: patient id, age between 0 and 99, diagnosis code, admission date, length of stay "
    "in days",
]
TARGET_P95_MS = 150


def seed(settings, args) -> dict[str, list[str]]:
    """The factory DB of a busy deployment; the ids each page is asked about."""
    from synth_pipelines.core.persona.personas import ConsentGrant, create_persona
    from synth_pipelines.core.security.accounts import Principal
    from synth_pipelines.core.security.crypto import keyring_from_env
    from synth_pipelines.core.storage.database import FactoryDatabase
    from synth_pipelines.core.storage.models import DatasetRequest, TabularJob
    from synth_pipelines.core.tabular.drafter import draft_schema
    from synth_pipelines.core.tabular.jobs import JobParams
    from synth_pipelines.core.tabular.runner import run_tabular_job
    from synth_pipelines.resources.object_store import ObjectStoreResource

    db = FactoryDatabase(settings.database_url)
    db.upgrade()
    rng = random.Random(0)
    now = utcnow()
    requests: list[str] = []
    with db.session() as session:
        for i in range(args.requests):
            bucket = rng.choice(["female/adult", "male/senior", "female/child", "male/teen"])
            count = rng.randint(1, 200)
            status = rng.choices(["ready", "pending", "packaging", "backordered"], [70, 20, 5, 5])[
                0
            ]
            created = now - timedelta(minutes=args.requests - i)
            row = DatasetRequest(
                spec={"buckets": {bucket: count}, "format": "zip", "image_size": 256,
                      "exclusive": True},
                status=status, total=count, created_at=created, code_hash="0" * 64,
            )  # fmt: skip
            if status in ("ready", "packaging"):
                row.started_at = created + timedelta(seconds=5)
            if status == "ready":
                row.ready_seconds = rng.uniform(8, 40)
                row.completed_at = created + timedelta(seconds=row.ready_seconds)
                row.delivered = {bucket: count}
                row.archive_key = f"datasets/{i}.zip"
                row.archive_bytes = count * 40_000
                row.expires_at = now + timedelta(days=1)
                row.downloads = rng.randint(0, 2)
            if status == "backordered":
                row.reason = f"{bucket} short by {count}: a refill is on its way"
            session.add(row)
            session.flush()
            requests.append(row.id)
    schemas = [draft_schema(p) for p in PROMPTS]
    # a completed job's page previews its stored Parquet: one real output per prompt, shared
    store = ObjectStoreResource(backend="local", root=str(settings.store.root)).get_store()
    params = JobParams(10_000, 10_000, 1, 1.0, 0)
    outputs = [
        run_tabular_job(schema, params, store=store, key_prefix=f"tabular/bench-{i}").outputs
        for i, schema in enumerate(schemas)
    ]
    jobs: list[str] = []
    with db.session() as session:
        for i in range(args.jobs):
            schema = schemas[i % len(schemas)]
            status = ("draft", "confirmed", "completed")[i % 3]
            job = TabularJob(
                prompt=PROMPTS[i % len(PROMPTS)], status=status,
                schema_json=schema.model_dump(mode="json", exclude_none=True), drafter="offline",
                owner=OWNERS[i % len(OWNERS)], attempts=int(status != "draft"), total_chunks=10,
                completed_chunks=10 if status == "completed" else 0,
                rows_generated=10_000 if status == "completed" else 0, rows_deduplicated=0,
                llm_rejects=0,
            )  # fmt: skip
            if status != "draft":
                job.params = {"total_rows": 10_000, "chunk_size": 1_000, "max_workers": 2,
                              "dedup_threshold": 1.0, "seed": i}  # fmt: skip
            if status == "completed":
                job.outputs = outputs[i % len(outputs)]
            session.add(job)
            session.flush()
            jobs.append(job.id)
    keys = keyring_from_env()
    personas: list[str] = []
    for i in range(args.personas):
        owner = Principal(user=OWNERS[i % len(OWNERS)], role="owner", key_id=f"k{i}")
        grant = ConsentGrant(("whatsapp",), ("training",), f"Person {i}", text="I agree.")
        persona, _ = create_persona(db, keys, owner, f"Person {i}", [f"Person {i}"], grant)
        personas.append(persona.id)
    return {"requests": requests, "jobs": jobs, "personas": personas}


def image_sets(settings, count: int) -> list[str]:
    """`count` image sets of the signed-in owner, each a 24-image demo set profiled, generated
    (16 images, simulation) and validated by a real run of the image set line."""
    import dagster as dg

    from synth_pipelines.core.imagesets.demo_images import write_demo_set
    from synth_pipelines.core.imagesets.registry import register_image_set
    from synth_pipelines.core.storage.database import FactoryDatabase
    from synth_pipelines.definitions import build_definitions
    from synth_pipelines.in_process import run_image_sets_in_process

    db = FactoryDatabase(settings.database_url)
    source = write_demo_set(Path(settings.home) / "demo_set", count=24, seed=1)
    ids = [
        register_image_set(db, str(source), name=f"set {i}", owner=OWNERS[0], backend="simulation",
                           count=16, seed=i, formats=["parquet", "coco"], truncation=0.7)["id"]
        for i in range(count)
    ]  # fmt: skip
    with dg.DagsterInstance.get() as instance:
        runs, _ = run_image_sets_in_process(build_definitions(settings), instance)
    assert runs and all(run.success for run in runs), "an image set run failed"
    return ids


def pages(ids: dict[str, list[str]]) -> list[tuple[str, str, object]]:
    """(page, who asks, path or a function of the sample's index giving one)."""
    requests = ids["requests"]
    own_jobs = ids["jobs"][:: len(OWNERS)]  # the signed-in owner's (OWNERS[0])
    own_personas = ids["personas"][:: len(OWNERS)]
    sets = ids["image_sets"]
    return [
        ("home", "owner", "/"),
        ("dataset request form", "owner", "/portal/datasets/new"),
        ("bulk request form", "owner", "/portal/datasets/bulk"),
        ("a request's page", "owner",
         lambda i: f"/portal/datasets/{requests[i * 37 % len(requests)]}"),
        ("a request's status panel", "owner",
         lambda i: f"/portal/datasets/{requests[i * 53 % len(requests)]}/status"),
        ("tabular jobs, own", "owner", "/portal/tabular"),
        ("tabular jobs, all", "admin", "/portal/tabular"),
        ("tabular prompt form", "owner", "/portal/tabular/new"),
        ("a tabular job's page", "owner",
         lambda i: f"/portal/tabular/{own_jobs[i * 7 % len(own_jobs)]}"),
        ("a tabular job's status panel", "owner",
         lambda i: f"/portal/tabular/{own_jobs[i * 11 % len(own_jobs)]}/status"),
        ("personas, own", "owner", "/portal/personas"),
        ("personas, all", "admin", "/portal/personas"),
        ("consent form", "owner", "/portal/personas/new"),
        ("a persona's page", "owner",
         lambda i: f"/portal/personas/{own_personas[i % len(own_personas)]}"),
        ("a persona's status panel", "owner",
         lambda i: f"/portal/personas/{own_personas[i * 3 % len(own_personas)]}/status"),
        ("subjects, own", "owner", "/portal/subjects"),
        ("subject upload form", "owner", "/portal/subjects/new"),
        ("image sets, own", "owner", "/portal/imagesets"),
        ("image set form", "owner", "/portal/imagesets/new"),
        ("an image set's page (profile, validation)", "owner",
         lambda i: f"/portal/imagesets/{sets[i % len(sets)]}"),
        ("an image set's status panel", "owner",
         lambda i: f"/portal/imagesets/{sets[i % len(sets)]}/status"),
        ("admin dashboard", "admin", "/portal/admin"),
        ("admin dashboard panel", "admin", "/portal/admin/panel"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--personas", type=int, default=100)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--image-sets", type=int, default=2, help="run for real (~1 min each)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="synth_portal_bench_"))
    os.environ.update(
        SYNTH_HOME=str(home), SYNTH_ADMIN_TOKEN=ADMIN_TOKEN,
        SYNTH_PORTAL_SECRET="portal-benchmark-secret", HF_HUB_OFFLINE="1",
        SYNTH_IMAGES_OCR="off",
    )  # fmt: skip
    from synth_pipelines.core.security.crypto import generate_master_key

    os.environ.setdefault("SYNTH_MASTER_KEY", generate_master_key())
    try:
        run(args)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run(args) -> None:
    from synth_pipelines.api.app import create_app
    from synth_pipelines.core.security.accounts import create_api_key
    from synth_pipelines.dagster_status import DagsterStatus
    from synth_pipelines.local_instance import prepare_dagster_home
    from synth_pipelines.settings import Settings

    settings = Settings.from_env()
    started = time.perf_counter()
    ids = seed(settings, args)
    seeded = time.perf_counter() - started
    # as `synth serve` runs: the dashboard reads the Dagster instance (refills, sensor ticks)
    os.environ["DAGSTER_HOME"] = str(prepare_dagster_home(Path(settings.home) / "dagster"))
    ids["image_sets"] = image_sets(settings, args.image_sets)
    app = create_app(settings, orchestrator=DagsterStatus())
    owner_key = create_api_key(app.state.synth.db, OWNERS[0], "owner")
    clients = {"owner": signed_in(app, owner_key), "admin": signed_in(app, ADMIN_TOKEN)}
    print(f"# portal.py — {time.strftime('%Y-%m-%d')}, {cpu_description()}, nproc {os.cpu_count()}")
    print(
        f"# Python {platform.python_version()}; SQLite; {args.requests:,} dataset requests, "
        f"{args.jobs:,} tabular jobs, {args.personas} personas, {args.image_sets} image sets "
        f"(seeded in {seeded:.0f} s); "
        f"{args.samples} samples a page after 10 warm-up"
    )
    print()
    print("| page | as | p50 ms | p95 ms | p99 ms | max ms | bytes | p95 <= 150 ms |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    worst = 0.0
    for name, who, path in pages(ids):
        client = clients[who]
        at = path if callable(path) else (lambda i, p=path: p)
        for i in range(10):
            check(client.get(at(i)), name)
        times, size = [], 0
        for i in range(args.samples):
            begun = time.perf_counter()
            response = client.get(at(i))
            times.append(time.perf_counter() - begun)
            check(response, name)
            size = len(response.content)
        ms = np.array(times) * 1000
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        worst = max(worst, p95)
        ok = "ok" if p95 <= TARGET_P95_MS else "FAIL"
        print(
            f"| {name} | {who} | {p50:.1f} | {p95:.1f} | {p99:.1f} | {ms.max():.1f} | "
            f"{size:,} | {ok} |"
        )
    print()
    print(f"worst p95: {worst:.1f} ms ({'met' if worst <= TARGET_P95_MS else 'NOT met'})")


def signed_in(app, key: str):
    import re

    from fastapi.testclient import TestClient

    client = TestClient(app)
    form = client.get("/portal/signin").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    response = client.post(
        "/portal/signin", data={"api_key": key, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303, response.text
    return client


def check(response, name: str) -> None:
    if response.status_code != 200:
        raise SystemExit(f"{name}: {response.status_code} {response.text[:300]}")


if __name__ == "__main__":
    main()
