"""The `synth` command: run the factory from a terminal (Typer + rich)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from synth_pipelines.core.errors import SynthError

app = typer.Typer(
    help="synth_pipelines: a synthetic-data factory on Dagster.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The factory database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
tabular_app = typer.Typer(
    help="Tabular jobs: draft a schema from plain English, confirm, follow, download.",
    no_args_is_help=True,
)
app.add_typer(tabular_app, name="tabular")
checks_app = typer.Typer(help="Data, image-quality and privacy checks.", no_args_is_help=True)
app.add_typer(checks_app, name="checks")
keys_app = typer.Typer(help="Master keys of persona encryption.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
apikeys_app = typer.Typer(help="API keys of users (owner, admin).", no_args_is_help=True)
app.add_typer(apikeys_app, name="apikeys")
flux_app = typer.Typer(help="Flux LoRAs of subjects: generate images.", no_args_is_help=True)
app.add_typer(flux_app, name="flux")
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
API_OPTION = typer.Option("http://127.0.0.1:8000", envvar="SYNTH_API_URL", help="API base URL.")
# Piped output (CI logs, `make demo | tee`) gets a table wide enough for bucket names.
console = Console() if sys.stdout.isatty() else Console(width=130)
errors = Console(stderr=True, soft_wrap=True)


def _settings():
    from synth_pipelines.settings import Settings

    try:
        return Settings.from_env()
    except SynthError as exc:
        _fail(str(exc))


def _fail(message: str, code: int = 1) -> None:
    errors.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _database(settings):
    from synth_pipelines.core.storage.database import FactoryDatabase

    db = FactoryDatabase(settings.database_url)
    try:
        db.upgrade()
    except SynthError as exc:
        _fail(str(exc))
    return db


def _progress() -> Progress:
    """A progress bar: what, a bar, done/total, time elapsed."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _dagster_home(settings) -> Path:
    # DagsterInstance.get() needs DAGSTER_HOME; default it inside SYNTH_HOME, like `make ui`.
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def inventory_table(settings, db, extra: dict[str, dict[str, str]] | None = None) -> Table:
    """A rich table of inventory levels per bucket, with optional extra columns per bucket."""
    from synth_pipelines.core.faces.inventory import inventory_status_counts

    counts = inventory_status_counts(db)
    extra = extra or {}
    extra_columns = sorted({column for row in extra.values() for column in row})
    table = Table(title=f"Face inventory ({db.describe()})")
    for column in ("bucket", "available", "reserved", "delivered", "target", "low-water", "fill"):
        table.add_column(column, justify="left" if column == "bucket" else "right")
    for column in extra_columns:
        table.add_column(column, justify="right")
    totals = {"available": 0, "reserved": 0, "delivered": 0, "target": 0}
    for bucket, row in counts.items():
        target = settings.targets[bucket]
        fill = row["available"] / target if target else 1.0
        style = "red" if row["available"] < settings.low_water_mark(bucket) else "green"
        table.add_row(
            bucket,
            f"[{style}]{row['available']}[/]",
            str(row["reserved"]),
            str(row["delivered"]),
            str(target),
            str(settings.low_water_mark(bucket)),
            f"{fill:.0%}",
            *(extra.get(bucket, {}).get(column, "") for column in extra_columns),
        )
        for key in ("available", "reserved", "delivered"):
            totals[key] += row[key]
        totals["target"] += target
    table.add_section()
    table.add_row(
        "total", *(str(totals[k]) for k in ("available", "reserved", "delivered", "target"))
    )
    return table


@app.command()
def inventory() -> None:
    """Print the face inventory: faces per bucket and status, against the targets."""
    settings = _settings()
    console.print(inventory_table(settings, _database(settings)))


@app.command()
def demo(
    per_bucket: int = typer.Option(20, min=1, max=1000, help="Faces to hold in each bucket."),
    dataset: bool = typer.Option(True, help="Then request, package, download and verify one."),
    tabular_rows: int = typer.Option(
        100_000, min=0, help="Then draft, confirm and generate a tabular job (0: skip)."
    ),
    persona: bool = typer.Option(
        True, help="Then train a persona adapter on a made-up chat export and review a draft."
    ),
    flux: bool = typer.Option(
        True, help="Then train a Flux LoRA of a subject from photos and generate images."
    ),
) -> None:
    """Fill a small inventory through real Dagster runs, then request a dataset over HTTP,
    package it in a real run, download and verify it, and report."""
    import dagster as dg

    from synth_pipelines.core.faces.buckets import ALL_BUCKETS
    from synth_pipelines.core.faces.inventory import inventory_levels
    from synth_pipelines.definitions import build_definitions
    from synth_pipelines.lines.faces.sensors import REFILL_JOB, refill_run_config
    from synth_pipelines.partitions import partition_for_bucket

    settings = _settings()
    home = _dagster_home(settings)
    db = _database(settings)
    job = build_definitions(settings).resolve_job_def(REFILL_JOB)
    instance = dg.DagsterInstance.get()
    console.print(
        f"SYNTH_HOME={settings.home}\nDAGSTER_HOME={home}\n"
        f"generator={settings.face_generator} classifier={settings.classifier} "
        f"label_source={settings.effective_label_source}"
    )
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
            added_total += added
            results[bucket.key] = {
                "added": str(added),
                "rejected": str(metadata.get("rejected", 0)),
                "seconds": f"{seconds:.2f}",
                "run": result.run_id[:8],
            }
            progress.advance(task)
    elapsed = time.perf_counter() - started
    console.print(inventory_table(settings, db, results))
    rate = added_total / elapsed if elapsed else 0.0
    console.print(
        f"Added {added_total} faces in {elapsed:.1f} s ({rate:.1f} faces/s end to end, "
        f"Dagster runs included). Objects under {settings.store_root}."
    )
    if dataset:
        _demo_dataset(settings, instance, per_bucket)
    if tabular_rows:
        _demo_tabular(settings, instance, tabular_rows)
    if persona:
        _demo_persona(settings, instance)
    if flux:
        _demo_flux(settings, instance)
    console.print("Open the runs and the assets' metadata with `make ui`.")


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


def _demo_tabular(settings, instance, rows: int) -> None:
    """Draft SynthAIx's example over HTTP, confirm it, generate it in a real run, download."""
    import pyarrow.parquet as pq

    from synth_pipelines.api.app import create_app
    from synth_pipelines.api.server import running_server
    from synth_pipelines.client.tabular import TabularClient
    from synth_pipelines.definitions import build_definitions
    from synth_pipelines.in_process import run_tabular_jobs_in_process

    defs = build_definitions(settings)
    with running_server(create_app(settings)) as url:
        client = TabularClient(url)
        job = client.draft(DEMO_PROMPT)
        console.print(f"\nPOST {url}/tabular/jobs {DEMO_PROMPT!r} → {job['id']} (draft)")
        console.print(schema_table(job))
        client.confirm(job["id"], total_rows=rows)
        started = time.perf_counter()
        runs, _ = run_tabular_jobs_in_process(defs, instance)
        if not all(run.success for run in runs):
            _fail("the tabular run failed; see `make ui`")
        checks = [c for run in runs for c in run.get_asset_check_evaluations()]
        failed = [c.check_name for c in checks if not c.passed]
        done = client.wait(job["id"], timeout=600)
        seconds = time.perf_counter() - started
        path = client.fetch(job["id"], "parquet", settings.home / "tables")
    table = pq.read_table(path)
    console.print(
        f"Tabular job {job['id']}: {table.num_rows:,} rows in {seconds:.2f} s "
        f"({table.num_rows / seconds:,.0f} rows/s through a Dagster run; "
        f"{done['rows_deduplicated']:,} duplicates removed; {len(checks) - len(failed)} of "
        f"{len(checks)} checks passed{': failed ' + ', '.join(failed) if failed else ''}).\n"
        f"parquet: {path}"
    )


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

    import httpx

    from synth_pipelines.api.app import create_app
    from synth_pipelines.api.server import running_server
    from synth_pipelines.core.persona.demo_export import demo_whatsapp_export
    from synth_pipelines.core.security.accounts import create_api_key
    from synth_pipelines.core.security.audit import verify
    from synth_pipelines.definitions import build_definitions
    from synth_pipelines.in_process import run_persona_training_in_process

    _demo_master_key(settings)
    if not settings.persona_base_model:
        settings = dataclasses.replace(settings, persona_base_model="tiny-test")
        console.print("SYNTH_PERSONA_BASE_MODEL unset: using the tiny GPT-2 test model")
    db = _database(settings)
    token = create_api_key(db, "demo-owner", "owner", actor="cli:demo")
    defs = build_definitions(settings)
    with running_server(create_app(settings)) as url:
        http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600)
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
    checks = ", ".join(f"{k} {'pass' if v else 'FAIL'}" for k, v in metrics["checks"].items())
    console.print(
        f"Adapter v{adapter['version']} ({adapter['method']}, {metrics['steps']} steps) in "
        f"{seconds:.1f} s: validation perplexity {metrics['val_perplexity']:.1f} vs "
        f"{metrics['base_val_perplexity']:.1f} for the base model; checks "
        f"{checks}.\n"
        f"Draft (approved, released): {message['text']!r}\n"
        f"Audit log: {audit.records} records, chain {'intact' if audit.ok else 'BROKEN'}."
    )


def _demo_flux(settings, instance) -> None:
    """A Flux subject over HTTP: photos with consent, a real photos → LoRA → samples run through
    the sensor, the registry, two generated images saved, a refused prompt."""
    import dataclasses

    import httpx

    from synth_pipelines.api.app import create_app
    from synth_pipelines.api.server import running_server
    from synth_pipelines.core.flux.demo_photos import subject_photos
    from synth_pipelines.core.security.accounts import create_api_key
    from synth_pipelines.definitions import build_definitions
    from synth_pipelines.in_process import run_subjects_in_process

    _demo_master_key(settings)
    if not settings.flux_base_model:
        # The tiny random pipeline draws noise, fast: small images, few steps.
        settings = dataclasses.replace(
            settings,
            flux_base_model="tiny-test",
            flux_resolution=settings.flux_resolution or 64,
            flux_sample_size=64,
            flux_train_steps=min(settings.flux_train_steps, 60),
            flux_checkpoint_every=20,
            flux_sample_every=30,
        )
        console.print("\nSYNTH_FLUX_BASE_MODEL unset: using the tiny Flux test pipeline")
    db = _database(settings)
    token = create_api_key(db, "demo-owner", "owner", actor="cli:demo")
    defs = build_definitions(settings)
    with running_server(create_app(settings)) as url:
        http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600)
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


def _save_images(images: list[str], out: Path, stem: str) -> list[Path]:
    """Base64 PNGs from the API as `<stem>-<i>.png` files in `out`."""
    import base64

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = out / f"{stem}-{i}.png"
        path.write_bytes(base64.b64decode(image))
        paths.append(path)
    return paths


QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _materialization_metadata(result) -> dict:
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        return {
            key: getattr(value, "value", value) for key, value in materialization.metadata.items()
        }
    return {}


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
) -> None:
    """Run the HTTP API (dataset requests, downloads, admin) with uvicorn."""
    from synth_pipelines.api import serve as run_server
    from synth_pipelines.dagster_status import DagsterStatus

    run_server(host=host, port=port, orchestrator=DagsterStatus())


@app.command()
def request(
    buckets: list[str] = typer.Argument(..., help="Faces per bucket, e.g. female/adult=10"),
    api: str = API_OPTION,
    fmt: str = typer.Option("zip", "--format", help="zip or webdataset"),
    image_size: int = typer.Option(256, help="Side of the delivered images in pixels."),
    shared: bool = typer.Option(False, "--shared", help="Allow faces other datasets also get."),
    wait: bool = typer.Option(False, help="Wait until ready, download and verify."),
    out: Path = typer.Option(Path("datasets"), help="Where --wait puts the dataset."),
    timeout: float = typer.Option(600, help="Seconds --wait waits for the dataset."),
) -> None:
    """Request a face dataset from the API; with --wait, download and verify it."""
    from synth_pipelines.client.datasets import DatasetClient

    counts: dict[str, int] = {}
    for item in buckets:
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit():
            _fail(f"{item!r} is not of the form gender/age_group=N (e.g. female/adult=10)")
        counts[name] = counts.get(name, 0) + int(value)
    client = DatasetClient(api)
    try:
        created = client.submit(
            {"buckets": counts, "format": fmt, "image_size": image_size, "exclusive": not shared}
        )
        console.print(f"request [bold]{created['id']}[/] {created['status']}")
        if not wait:
            console.print(f"download link (shown once): {created['download_url']}")
            return
        started = time.perf_counter()
        with console.status("waiting for the dataset") as status:
            final = client.wait(
                created["id"],
                timeout=timeout,
                on_update=lambda r: status.update(f"dataset {r['id']}: {r['status']}"),
            )
        ready_seconds = time.perf_counter() - started
        with Progress(
            TextColumn("downloading"), BarColumn(), MofNCompleteColumn(), console=console
        ) as progress:
            task = progress.add_task("download", total=None)
            archive = client.download(
                created["download_url"],
                out,
                on_bytes=lambda done, total: progress.update(task, completed=done, total=total),
            )
        manifest, folder = client.verify_and_extract(archive, out)
    except SynthError as exc:
        _fail(str(exc))
    console.print(
        f"dataset {final['id']} ready in {ready_seconds:.1f} s: "
        f"{manifest['counts']['total']} faces, manifest verified\n"
        f"archive: {archive}\nfiles:   {folder}"
    )


def _tabular_client(api: str):
    from synth_pipelines.client.tabular import TabularClient

    return TabularClient(api)


def schema_table(job: dict) -> Table:
    """A drafted schema as a table: one row per column."""
    from synth_pipelines.core.tabular.schema import TableSchema

    schema = TableSchema.model_validate(job["schema"])
    table = Table(title=f"{schema.name}: {schema.rows or '?'} rows")
    for header in ("column", "type", "semantic", "constraints"):
        table.add_column(header)
    for column in schema.columns:
        table.add_row(
            column.name,
            column.type,
            column.semantic_type or "",
            " ".join(column.constraint_labels()),
        )
    return table


@tabular_app.command("draft")
def tabular_draft(
    prompt: str = typer.Argument(..., help='e.g. "10k customers with name, email, signup date"'),
    api: str = API_OPTION,
) -> None:
    """Draft a schema from a plain-English prompt (nothing is generated yet)."""
    try:
        job = _tabular_client(api).draft(prompt)
    except SynthError as exc:
        _fail(str(exc))
    console.print(schema_table(job))
    rows = job["schema"].get("rows") or 1000
    console.print(
        f"job [bold]{job['id']}[/] drafted by {job['drafter']}. Review, then:\n"
        f"  synth tabular confirm {job['id']} --rows {rows}\n"
        f"  (edit first: synth tabular edit {job['id']} schema.json)"
    )


@tabular_app.command("edit")
def tabular_edit(
    job_id: str = typer.Argument(...),
    schema_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="schema JSON"),
    api: str = API_OPTION,
) -> None:
    """Replace a draft's schema with the JSON in SCHEMA_FILE."""
    import json

    try:
        schema = json.loads(schema_file.read_text())
    except json.JSONDecodeError as exc:
        _fail(f"{schema_file} is not valid JSON: {exc}")
    try:
        job = _tabular_client(api).edit_schema(job_id, schema)
    except SynthError as exc:
        _fail(str(exc))
    console.print(schema_table(job))


@tabular_app.command("confirm")
def tabular_confirm(
    job_id: str = typer.Argument(...),
    rows: int | None = typer.Option(None, "--rows", help="Rows to generate (default: drafted)."),
    chunk_size: int | None = typer.Option(None, help="Rows per chunk."),
    workers: int | None = typer.Option(None, help="Processes generating chunks."),
    dedup_threshold: float | None = typer.Option(None, help="Cosine threshold; 1 = off."),
    seed: int | None = typer.Option(None, help="Seed (same seed, same table)."),
    api: str = API_OPTION,
) -> None:
    """Confirm a draft: the tabular job sensor starts generating it."""
    try:
        job = _tabular_client(api).confirm(
            job_id,
            total_rows=rows,
            chunk_size=chunk_size,
            max_workers=workers,
            dedup_threshold=dedup_threshold,
            seed=seed,
        )
    except SynthError as exc:
        _fail(str(exc))
    params = job["params"]
    console.print(
        f"job [bold]{job_id}[/] confirmed: {params['total_rows']:,} rows in "
        f"{job['total_chunks']} chunk(s). Follow it: synth tabular status {job_id}"
    )


@tabular_app.command("status")
def tabular_status(
    job_id: str = typer.Argument(...),
    wait: bool = typer.Option(True, help="Follow with a progress bar until it finishes."),
    out: Path | None = typer.Option(None, help="When done, download the table here."),
    fmt: str = typer.Option("parquet", "--format", help="parquet or csv"),
    timeout: float = typer.Option(3600, help="Seconds to follow."),
    api: str = API_OPTION,
) -> None:
    """Show a job's progress; follows it with a progress bar until it completes."""
    client = _tabular_client(api)
    try:
        job = client.status(job_id)
        if wait and job["status"] in ("confirmed", "running"):
            with _progress() as bar:
                task = bar.add_task(f"job {job_id}", total=job["total_chunks"] or None)

                def update(current: dict) -> None:
                    bar.update(
                        task,
                        completed=current["completed_chunks"],
                        total=current["total_chunks"] or None,
                        description=(
                            f"{current['status']}: {current['rows_generated']:,} rows generated, "
                            f"{current['rows_deduplicated']:,} deduplicated"
                        ),
                    )

                job = client.wait(job_id, timeout=timeout, on_update=update)
        console.print(
            f"job [bold]{job_id}[/] {job['status']}: {job['progress_percentage']}% "
            f"({job['completed_chunks']}/{job['total_chunks']} chunks), "
            f"{job['rows_generated']:,} rows generated, {job['rows_deduplicated']:,} deduplicated"
        )
        if job.get("error"):
            _fail(job["error"])
        if job["status"] == "completed":
            console.print(f"download: {job['download_url']}")
            if out is not None:
                console.print(f"saved {client.fetch(job_id, fmt, out)}")
    except SynthError as exc:
        _fail(str(exc))


@checks_app.command("run")
def checks_run(
    select: list[str] = typer.Option(
        None, "--select", "-s", help="Check name, glob or asset (repeatable); default: all."
    ),
) -> None:
    """Run checks on the local instance and print their results; exit 1 when an
    error-severity check fails (or a check cannot run), so CI pipelines can gate on it."""
    import dagster as dg

    from synth_pipelines.dbt_like_checks.run import run_checks, select_checks
    from synth_pipelines.definitions import build_definitions

    settings = _settings()
    _dagster_home(settings)
    _database(settings)
    try:
        defs = build_definitions(settings)
        keys = select_checks(defs, select or [])
    except SynthError as exc:
        _fail(str(exc))
    started = time.perf_counter()
    with console.status(f"running {len(keys)} check(s)"), dg.DagsterInstance.get() as instance:
        result = run_checks(defs, instance, keys)
    evaluations = {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}
    table = Table(title=f"{len(keys)} checks in {time.perf_counter() - started:.1f} s")
    for column in ("check", "severity", "result", "details"):
        table.add_column(column, overflow="fold")
    blocking = 0
    for key in keys:
        evaluation = evaluations.get((key.asset_key, key.name))
        if evaluation is None:
            blocking += 1
            table.add_row(key.name, "-", "[red]did not run[/]", "the check raised; see `make ui`")
            continue
        error = evaluation.severity == dg.AssetCheckSeverity.ERROR
        status = (
            "[green]pass[/]"
            if evaluation.passed
            else "[red]FAIL[/]"
            if error
            else "[yellow]warn[/]"
        )
        blocking += (not evaluation.passed) and error
        table.add_row(
            key.name, "error" if error else "warn", status, (evaluation.description or "")[:200]
        )
    console.print(table)
    console.print(f"run {result.run_id} (open it with `make ui`)")
    if blocking:
        _fail(f"{blocking} error-severity check(s) failed or did not run")


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random master key (for SYNTH_MASTER_KEY); nothing is stored."""
    from synth_pipelines.core.security.crypto import generate_master_key

    print(generate_master_key())


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-wrap every persona's data key under SYNTH_MASTER_KEY. Put the old master key(s) in
    SYNTH_MASTER_KEYS_PREVIOUS while this runs; remove them once it reports 0 left."""
    from synth_pipelines.core.security.crypto import keyring_from_env
    from synth_pipelines.core.security.rotation import rotate_keys

    settings = _settings()
    db = _database(settings)
    try:
        counts = rotate_keys(db, keyring_from_env(), actor="cli:keys rotate")
    except SynthError as exc:
        _fail(str(exc))
    console.print(
        f"re-wrapped {counts['rewrapped']} data key(s); {counts['current']} already under the "
        "current master key"
    )


@apikeys_app.command("create")
def apikeys_create(
    user: str = typer.Argument(..., help="The user the key belongs to."),
    role: str = typer.Option("owner", help="owner (their own personas) or admin (all)."),
) -> None:
    """Create an API key and print it once: only its hash is stored."""
    from synth_pipelines.core.security.accounts import create_api_key

    settings = _settings()
    try:
        token = create_api_key(_database(settings), user, role, actor="cli:apikeys create")
    except SynthError as exc:
        _fail(str(exc))
    print(token)


@apikeys_app.command("list")
def apikeys_list() -> None:
    """List API keys (ids, users, roles; never the secrets)."""
    from synth_pipelines.core.security.accounts import list_api_keys

    table = Table()
    for column in ("id", "user", "role", "created", "revoked"):
        table.add_column(column)
    for key in list_api_keys(_database(_settings())):
        table.add_row(
            key.id,
            key.user,
            key.role,
            f"{key.created_at:%Y-%m-%d %H:%M}",
            str(key.revoked_at or ""),
        )
    console.print(table)


@apikeys_app.command("revoke")
def apikeys_revoke(key_id: str = typer.Argument(..., help="The key's id (see `list`).")) -> None:
    """Revoke an API key: it stops working at once."""
    from synth_pipelines.core.security.accounts import revoke_api_key

    try:
        revoke_api_key(_database(_settings()), key_id, actor="cli:apikeys revoke")
    except SynthError as exc:
        _fail(str(exc))
    console.print(f"revoked {key_id}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain; exit 1 naming every edited or deleted record."""
    from synth_pipelines.core.security.audit import verify

    result = verify(_database(_settings()))
    if not result.ok:
        for problem in result.problems:
            errors.print(f"[red]{problem}[/]")
        _fail(f"the audit log was tampered with: {len(result.problems)} problem(s)")
    console.print(f"audit log intact: {result.records} records, head {result.head_hash[:16]}…")


@flux_app.command("generate")
def flux_generate(
    subject: str = typer.Argument(..., help="The subject's id."),
    prompt: str = typer.Argument(..., help="What to draw; [trigger] stands for the subject."),
    n: int = typer.Option(1, min=1, help="Images to draw."),
    seed: int = typer.Option(0, min=0, help="Seed of the first image."),
    steps: int = typer.Option(None, min=1, max=100, help="Inference steps (default: setting)."),
    out: Path = typer.Option(Path("."), help="Folder for the PNG files."),
    api: str = API_OPTION,
    api_key: str = typer.Option(
        ..., envvar="SYNTH_API_KEY", help="Your API key (or SYNTH_API_KEY).", show_default=False
    ),
) -> None:
    """Generate images of a subject through the API and save them as PNG files."""

    import httpx

    body = {"prompt": prompt, "n": n, "seed": seed, **({"steps": steps} if steps else {})}
    try:
        response = httpx.post(
            f"{api.rstrip('/')}/subjects/{subject}/generate",
            json=body,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=3600,
        )
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the API at {api}: {exc}")
    if response.status_code != 200:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        _fail(f"HTTP {response.status_code}: {detail}")
    result = response.json()
    stem = f"{subject[:8]}-v{result['lora_version']}-seed{seed}"
    for path in _save_images(result["images"], out, stem):
        console.print(str(path))
    console.print(
        f"{len(result['images'])} image(s) in {result['seconds']:.2f} s "
        f"(queued {result['queue_seconds']:.2f} s)"
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the factory database to the latest schema."""
    settings = _settings()
    db = _database(settings)
    console.print(f"{db.describe()} at revision {db.current_revision()}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
