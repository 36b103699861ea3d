"""`synth demo`: the whole factory end to end in this process, one step per product line: faces
refilled through real Dagster runs, then a dataset, a tabular job, a persona, a Flux subject and
an image set, each requested over HTTP and run through its sensor, with a report per step."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from synth_pipelines.cli.common import (
    _dagster_home,
    _database,
    _fail,
    _progress,
    _settings,
    console,
)
from synth_pipelines.cli.flux import _save_images
from synth_pipelines.cli.inventory import inventory_table
from synth_pipelines.cli.tabular import schema_table


def demo(
    per_bucket: int = typer.Option(20, min=1, max=1000, help="Faces to hold in each bucket."),
    dataset: bool = typer.Option(True, help="Then request, package, download and verify one."),
    tabular_rows: int | None = typer.Option(
        None,
        min=0,
        help="Then draft, confirm and generate a tabular job of this many rows (default: the "
        "count the prompt asks for, 10k; 0: skip).",
    ),
    persona: bool = typer.Option(
        True, help="Then train a persona adapter on a made-up chat export and review a draft."
    ),
    flux: bool = typer.Option(
        True, help="Then train a Flux LoRA of a subject from photos and generate images."
    ),
    images: bool = typer.Option(
        True, help="Then profile a real image set, generate to it, validate and export it."
    ),
    validate: bool = typer.Option(
        True, help="Finally run validation_job, so the UI shows every check evaluated."
    ),
) -> None:
    """Fill a small inventory through real Dagster runs, then request a dataset over HTTP,
    package it in a real run, download and verify it, and report."""
    import dagster as dg

    from synth_pipelines.definitions import build_definitions
    from synth_pipelines.lines.faces.sensors import REFILL_JOB

    settings = _settings()
    home = _dagster_home(settings)
    db = _database(settings)
    job = build_definitions(settings).resolve_job_def(REFILL_JOB)
    instance = dg.DagsterInstance.get()
    console.print(
        f"SYNTH_HOME={settings.home}\nDAGSTER_HOME={home}\n"
        f"generator={settings.faces.generator} classifier={settings.faces.classifier} "
        f"label_source={settings.faces.effective_label_source}"
    )
    _demo_faces(settings, db, job, instance, per_bucket)
    if dataset:
        _demo_dataset(settings, instance, per_bucket)
    if tabular_rows != 0:
        _demo_tabular(settings, instance, tabular_rows)
    if persona:
        _demo_persona(settings, instance)
    if flux:
        _demo_flux(settings, instance)
    if images:
        _demo_images(settings, instance)
    if validate:
        _demo_validation(settings, instance)
    console.print("Open the runs and the assets' metadata with `make ui`.")


def _demo_validation(settings, instance) -> None:
    """Run validation_job, as the nightly schedule does, and count its checks per asset."""
    from collections import Counter

    from synth_pipelines.core.checks.outcome import FAILED, PASSED, SKIPPED, WARNED
    from synth_pipelines.dbt_like_checks.results import evaluation_status
    from synth_pipelines.dbt_like_checks.validation import VALIDATION_JOB
    from synth_pipelines.definitions import build_definitions

    started = time.perf_counter()
    with console.status("validation_job: every check on the inventory, datasets and tables"):
        result = (
            build_definitions(settings)
            .resolve_job_def(VALIDATION_JOB)
            .execute_in_process(
                instance=instance,
                tags={"synth/trigger": "demo"},
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                raise_on_error=False,
            )
        )
    counts: dict[str, Counter] = {}
    for evaluation in result.get_asset_check_evaluations():
        asset = evaluation.asset_key.to_user_string()
        counts.setdefault(asset, Counter())[evaluation_status(evaluation)] += 1
    table = Table(title=f"validation_job in {time.perf_counter() - started:.1f} s")
    for column in ("asset", PASSED, FAILED, WARNED, SKIPPED):
        table.add_column(column, justify="left" if column == "asset" else "right")
    for asset, counted in sorted(counts.items()):
        table.add_row(asset, *(str(counted[s]) for s in (PASSED, FAILED, WARNED, SKIPPED)))
    console.print(table)
    console.print(
        "skipped: nothing to check yet (never shown as a pass); "
        "`synth checks run` repeats this, `synth checks holds` lists any holds"
    )
    if not result.success:
        console.print(f"[red]validation_job run {result.run_id} failed: see `make ui`[/]")


def _demo_faces(settings, db, job, instance, per_bucket: int) -> None:
    """Top every bucket up to `per_bucket` faces, one refill run of `job` per bucket short of it;
    print the inventory with each bucket's run and the end-to-end rate."""
    from synth_pipelines.core.faces.buckets import ALL_BUCKETS
    from synth_pipelines.core.faces.inventory import inventory_levels

    levels = inventory_levels(db)
    results: dict[str, dict[str, str]] = {}
    started = time.perf_counter()
    added_total = 0
    with _progress() as progress:
        task = progress.add_task("refilling buckets", total=len(ALL_BUCKETS))
        for bucket in ALL_BUCKETS:
            need = per_bucket - levels[bucket.key]
            progress.update(task, description=f"refilling {bucket}")
            if need <= 0:
                results[bucket.key] = {"added": "0", "run": "(full)"}
                progress.advance(task)
                continue
            added, results[bucket.key] = _demo_refill(job, instance, bucket, need)
            added_total += added
            progress.advance(task)
    elapsed = time.perf_counter() - started
    console.print(inventory_table(settings, db, results))
    rate = added_total / elapsed if elapsed else 0.0
    console.print(
        f"Added {added_total} faces in {elapsed:.1f} s ({rate:.1f} faces/s end to end, "
        f"Dagster runs included). Objects under {settings.store.root}."
    )


def _demo_refill(job, instance, bucket, need: int) -> tuple[int, dict[str, str]]:
    """One refill run adding `need` faces to `bucket`: (faces added, its row of the report)."""
    from synth_pipelines.lines.faces.sensors import refill_run_config
    from synth_pipelines.partitions import partition_for_bucket

    tick = time.perf_counter()
    result = job.execute_in_process(
        partition_key=str(partition_for_bucket(bucket)),
        # The table below is the report; Dagster's step logs are in the UI.
        run_config={**refill_run_config(need), **QUIET_LOGS},
        instance=instance,
        tags={"synth/trigger": "demo"},
        raise_on_error=False,
    )
    seconds = time.perf_counter() - tick
    if not result.success:
        _fail(f"refill run {result.run_id} for {bucket} failed; see `make ui`")
    metadata = _materialization_metadata(result)
    added = int(metadata.get("added", 0))
    return added, {
        "added": str(added),
        "rejected": str(metadata.get("rejected", 0)),
        "seconds": f"{seconds:.2f}",
        "run": result.run_id[:8],
    }


def _demo_dataset(settings, instance, per_bucket: int) -> None:
    """Request a dataset over HTTP, package it with a real run, download and verify it."""
    from synth_pipelines.api.app import create_app
    from synth_pipelines.api.server import running_server
    from synth_pipelines.client.datasets import DatasetClient
    from synth_pipelines.definitions import build_definitions
    from synth_pipelines.in_process import package_requests_in_process

    defs = build_definitions(settings)
    count = max(1, per_bucket // 2)
    spec = {"buckets": {"female/adult": count, "male/senior": count}, "format": "zip"}
    with running_server(create_app(settings)) as url:
        client = DatasetClient(url)
        started = time.perf_counter()
        created = client.submit(spec)
        console.print(f"\nPOST {url}/datasets {spec['buckets']} → {created['id']} (pending)")
        # What the daemon would do on its next tick: the sensor, then the packaging run.
        runs, _ = package_requests_in_process(defs, instance)
        if not all(run.success for run in runs):
            _fail("the packaging run failed; see `make ui`")
        ready = client.wait(created["id"], timeout=60)
        ready_seconds = time.perf_counter() - started
        out = settings.home / "datasets"
        archive = client.download(created["download_url"], out)
        manifest, folder = client.verify_and_extract(archive, out)
    console.print(
        f"Dataset {ready['id']} ready {ready_seconds:.2f} s after the request "
        f"(queue to ready {ready['queue_to_ready_seconds']:.2f} s, no sensor interval); "
        f"{manifest['counts']['total']} faces, every file verified against manifest.json.\n"
        f"archive: {archive}\nfiles:   {folder}"
    )


DEMO_PROMPT = "Generate 10k financial transactions with user ID, amount, currency, and timestamp"


def _demo_tabular(settings, instance, rows: int | None) -> None:
    """Draft SynthAIx's example over HTTP, confirm it, generate it in a real run, download."""
    import pyarrow.parquet as pq

    from synth_pipelines.api.app import create_app
    from synth_pipelines.api.server import running_server
    from synth_pipelines.client.tabular import TabularClient
    from synth_pipelines.core.checks.outcome import FAILED, SKIPPED, WARNED
    from synth_pipelines.dbt_like_checks.results import evaluation_status
    from synth_pipelines.definitions import build_definitions
    from synth_pipelines.in_process import run_tabular_jobs_in_process

    defs = build_definitions(settings)
    with running_server(create_app(settings)) as url:
        client = TabularClient(url)
        job = client.draft(DEMO_PROMPT)
        console.print(f"\nPOST {url}/tabular/jobs {DEMO_PROMPT!r} → {job['id']} (draft)")
        console.print(schema_table(job))
        drafted = job["schema"].get("rows")
        if rows is None:
            rows = drafted or 10_000
            console.print(f"confirming the {rows:,} rows the prompt asks for")
        elif rows != drafted:
            console.print(
                f"confirming {rows:,} rows: --tabular-rows overrides the "
                f"{drafted:,} rows the prompt asks for"
                if drafted
                else f"confirming {rows:,} rows (--tabular-rows; the prompt states no count)"
            )
        client.confirm(job["id"], total_rows=rows)
        started = time.perf_counter()
        runs, _ = run_tabular_jobs_in_process(defs, instance)
        if not all(run.success for run in runs):
            _fail("the tabular run failed; see `make ui`")
        checks = [c for run in runs for c in run.get_asset_check_evaluations()]
        statuses = {c.check_name: evaluation_status(c) for c in checks}
        failed = [name for name, status in statuses.items() if status in (FAILED, WARNED)]
        skipped = [name for name, status in statuses.items() if status == SKIPPED]
        done = client.wait(job["id"], timeout=600)
        seconds = time.perf_counter() - started
        path = client.fetch(job["id"], "parquet", settings.home / "tables")
    table = pq.read_table(path)
    console.print(
        f"Tabular job {job['id']}: {table.num_rows:,} rows in {seconds:.2f} s "
        f"({table.num_rows / seconds:,.0f} rows/s through a Dagster run; "
        f"{done['rows_deduplicated']:,} duplicates removed; "
        f"{len(checks) - len(failed) - len(skipped)} of {len(checks)} checks passed"
        f"{'; failed ' + ', '.join(failed) if failed else ''}"
        f"{'; skipped (nothing to check) ' + ', '.join(skipped) if skipped else ''}).\n"
        f"parquet: {path}"
    )


@contextmanager
def _as_demo_owner(settings) -> Iterator[tuple[Any, Any, str, Any]]:
    """The factory DB, the definitions, and the API served here with an HTTP client that holds
    a new owner's API key: what the persona and Flux steps both work through."""
    import httpx

    from synth_pipelines.api.app import create_app
    from synth_pipelines.api.server import running_server
    from synth_pipelines.core.security.accounts import create_api_key
    from synth_pipelines.definitions import build_definitions

    db = _database(settings)
    token = create_api_key(db, "demo-owner", "owner", actor="cli:demo")
    defs = build_definitions(settings)
    with (
        running_server(create_app(settings)) as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600
        ) as http,
    ):
        yield db, defs, url, http


def _demo_master_key(settings) -> None:
    """SYNTH_MASTER_KEY for the demo: the environment's, else one kept in SYNTH_HOME (0600)."""
    if os.environ.get("SYNTH_MASTER_KEY"):
        return
    from synth_pipelines.core.security.crypto import generate_master_key

    path = settings.home / "demo-master.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(generate_master_key())
    os.environ["SYNTH_MASTER_KEY"] = path.read_text().strip()
    console.print(
        f"\n[yellow]demo only:[/] SYNTH_MASTER_KEY read from {path}; in production it comes "
        "from the environment (`synth keys generate`)"
    )


def _demo_persona(settings, instance) -> None:
    """A persona over HTTP: consent, an encrypted upload, a real training run through the
    sensor, the registry, a draft reviewed and released, the audit chain verified."""
    import dataclasses

    from synth_pipelines.core.persona.demo_export import demo_whatsapp_export
    from synth_pipelines.core.security.audit import verify
    from synth_pipelines.in_process import run_persona_training_in_process

    _demo_master_key(settings)
    if not settings.personas.base_model:
        personas = dataclasses.replace(settings.personas, base_model="tiny-test")
        settings = dataclasses.replace(settings, personas=personas)
        console.print("SYNTH_PERSONA_BASE_MODEL unset: using the tiny GPT-2 test model")
    with _as_demo_owner(settings) as (db, defs, url, http):
        created = (
            http.post(
                "/personas",
                json={
                    "display_name": "Ada Quill",
                    "self_ids": ["Ada Quill"],
                    "consent": {
                        "sources": ["whatsapp"],
                        "uses": ["training", "generation"],
                        "granted_by": "Ada Quill (fictional), demo",
                        "text": "Demo consent: a fictional person's made-up chat.",
                    },
                },
            )
            .raise_for_status()
            .json()
        )
        pid = created["id"]
        upload = (
            http.post(
                f"/personas/{pid}/sources",
                data={"format": "whatsapp"},
                files={"file": ("chat.txt", demo_whatsapp_export(300), "text/plain")},
            )
            .raise_for_status()
            .json()
        )
        console.print(
            f"\nPOST {url}/personas → {pid}; uploaded a WhatsApp export: "
            f"{upload['messages']} messages, {upload['persona_messages']} of the persona's "
            "(stored encrypted)"
        )
        started = time.perf_counter()
        with console.status("training the persona adapter (corpus → dataset → adapter)"):
            runs, _ = run_persona_training_in_process(defs, instance, raise_on_error=False)
        if not runs or not all(run.success for run in runs):
            _fail("the persona training run failed; see `make ui`")
        seconds = time.perf_counter() - started
        [adapter] = http.get(f"/personas/{pid}/adapters").raise_for_status().json()[-1:]
        metrics = adapter["metrics"]
        draft = (
            http.post(f"/personas/{pid}/drafts", json={"prompt": "are you free on friday?"})
            .raise_for_status()
            .json()
        )
        http.post(f"/drafts/{draft['id']}/approve").raise_for_status()
        message = http.get(f"/drafts/{draft['id']}/message").raise_for_status().json()
    audit = verify(db)
    skipped = set(metrics.get("checks_skipped", []))
    checks = ", ".join(
        f"{k} {'skipped' if k in skipped else 'pass' if v else 'FAIL'}"
        for k, v in metrics["checks"].items()
    )
    tiny = settings.personas.base_model == "tiny-test"
    source = "the tiny test model's output: random weights, so noise" if tiny else "approved"
    console.print(
        f"Adapter v{adapter['version']} ({adapter['method']}, {metrics['steps']} steps) in "
        f"{seconds:.1f} s: validation perplexity {metrics['val_perplexity']:.1f} vs "
        f"{metrics['base_val_perplexity']:.1f} for the base model; checks "
        f"{checks}.\n"
        f"Draft ({source}; released after approval): {printable(message['text'])}\n"
        f"Audit log: {audit.records} records, chain {'intact' if audit.ok else 'BROKEN'}."
    )


def printable(text: str) -> str:
    """`text` quoted for a terminal: control and other unprintable characters escaped (repr),
    and no rich markup read into it."""
    return escape(repr(text))


def _demo_flux(settings, instance) -> None:
    """A Flux subject over HTTP: photos with consent, a real photos → LoRA → samples run through
    the sensor, the registry, two generated images saved, a refused prompt."""
    import dataclasses

    from synth_pipelines.core.flux.demo_photos import subject_photos
    from synth_pipelines.in_process import run_subjects_in_process

    _demo_master_key(settings)
    if not settings.flux.base_model:
        # The tiny random pipeline draws noise, fast: small images, few steps.
        flux = dataclasses.replace(
            settings.flux,
            base_model="tiny-test",
            resolution=settings.flux.resolution or 64,
            sample_size=64,
            train_steps=min(settings.flux.train_steps, 60),
            checkpoint_every=20,
            sample_every=30,
        )
        settings = dataclasses.replace(settings, flux=flux)
        console.print("\nSYNTH_FLUX_BASE_MODEL unset: using the tiny Flux test pipeline")
    with _as_demo_owner(settings) as (_db, defs, url, http):
        photos = [("photos", (name, data, "image/jpeg")) for name, data in subject_photos().items()]
        created = (
            http.post("/subjects", files=photos, data={"trigger": "sks_astro", "consent": "true"})
            .raise_for_status()
            .json()
        )
        sid = created["id"]
        console.print(f"POST {url}/subjects ({created['uploads']} photos, consent) → {sid}")
        started = time.perf_counter()
        with console.status("preparing photos and training the LoRA"):
            runs, _ = run_subjects_in_process(defs, instance, raise_on_error=False)
        if not runs or not all(run.success for run in runs):
            _fail("the Flux run failed; see `make ui`")
        seconds = time.perf_counter() - started
        subject = http.get(f"/subjects/{sid}").raise_for_status().json()
        [lora] = http.get(f"/subjects/{sid}/loras").raise_for_status().json()[-1:]
        result = (
            http.post(
                f"/subjects/{sid}/generate", json={"prompt": "[trigger] on a mountain", "n": 2}
            )
            .raise_for_status()
            .json()
        )
        refused = http.post(f"/subjects/{sid}/generate", json={"prompt": "a nude [trigger]"})
    paths = [str(p) for p in _save_images(result["images"], settings.home / "flux", sid[:8])]
    console.print(
        f"Subject {sid}: {subject['photos']} photos accepted, {len(subject['rejected'])} "
        f"rejected; LoRA v{lora['version']} ({lora['metrics']['steps']} steps, "
        f"{lora['metrics']['steps_per_s']:.1f} steps/s) in {seconds:.1f} s with the samples.\n"
        f"Generated {len(paths)} images in {result['seconds']:.2f} s: {', '.join(paths)}\n"
        f"A prompt against the content policy: HTTP {refused.status_code}."
    )


def _demo_images(settings, instance) -> None:
    """An image set over HTTP: crops of the photographs scikit-image ships, registered with an
    admin key, run through image_set_sensor (profile → synthetic set → checks → exports)."""
    import httpx

    from synth_pipelines.api.app import create_app
    from synth_pipelines.api.server import running_server
    from synth_pipelines.core.imagesets.demo_images import write_demo_set
    from synth_pipelines.core.security.accounts import create_api_key
    from synth_pipelines.definitions import build_definitions
    from synth_pipelines.in_process import run_image_sets_in_process

    db = _database(settings)
    folder = write_demo_set(settings.home / "demo_images", count=48)
    token = create_api_key(db, "demo-admin", "admin", actor="cli:demo")
    defs = build_definitions(settings)
    formats = ["imagefolder", "parquet", "webdataset", "coco", "jsonl"]
    with (
        running_server(create_app(settings)) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http,
    ):
        created = (
            http.post("/imagesets", json={"source": str(folder), "count": 48, "formats": formats})
            .raise_for_status()
            .json()
        )
        console.print(f"\nPOST {url}/imagesets {folder} → {created['id']} (pending)")
        started = time.perf_counter()
        with console.status("profiling, generating to the profile, validating, exporting"):
            runs, _ = run_image_sets_in_process(defs, instance, raise_on_error=False)
        image_set = http.get(f"/imagesets/{created['id']}").raise_for_status().json()
    if not runs or not all(run.success for run in runs):
        _fail(f"the image set run failed: {image_set.get('error')}; see `make ui`")
    real, synthetic = image_set["counts"]["real"], image_set["counts"]["synthetic"]
    table = Table(title=f"image set {created['id']} in {time.perf_counter() - started:.1f} s")
    for column in ("stage", "result"):
        table.add_column(column)
    table.add_row("profile", f"{real['ok']}/{real['images']} images, {real['images_per_s']}/s")
    table.add_row(
        "generate", f"{synthetic['generated']} ({synthetic['backend']}), "
        f"{synthetic['images_per_s']}/s",
    )  # fmt: skip
    for name, check in image_set["checks"].items():
        verdict = "skipped" if check["skipped"] else "passed" if check["passed"] else "failed"
        table.add_row(f"check {name}", f"{verdict}: {check['description'][:90]}")
    for fmt, prefix in image_set["exports"].items():
        table.add_row(f"export {fmt}", prefix)
    console.print(table)


QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _materialization_metadata(result) -> dict:
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        return {
            key: getattr(value, "value", value) for key, value in materialization.metadata.items()
        }
    return {}
