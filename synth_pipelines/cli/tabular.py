"""`synth tabular`: draft a schema from plain English, edit, confirm, follow and download a job."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from synth_pipelines.cli.common import API_OPTION, _fail, _progress, console
from synth_pipelines.core.errors import SynthError

tabular_app = typer.Typer(
    help="Tabular jobs: draft a schema from plain English, confirm, follow, download.",
    no_args_is_help=True,
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


def print_schema(job: dict) -> None:
    """The schema table, the constraints between columns (a fitted schema's), then each phrase
    of the prompt the drafter did not read (or what inference was unsure of). A job fitted to
    tables joined by keys: each table's, then the keys."""
    tables = job.get("tables")
    if tables:
        for schema in tables["schemas"].values():
            print_schema({"schema": schema})
        for key in tables["keys"]:
            console.print(f"key: {key}", markup=False, highlight=False)
        return
    console.print(schema_table(job))
    for constraint in job["schema"].get("constraints") or ():
        if constraint["kind"] == "inequality":
            text = f"{constraint['high']} >= {constraint['low']}"
        else:
            text = f"only the combinations of {', '.join(constraint['columns'])} in the sample"
        console.print(f"constraint: {text}", markup=False, highlight=False)
    for warning in job["schema"].get("warnings") or ():
        console.print(f"warning: {warning}", markup=False, highlight=False, style="yellow")


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
    print_schema(job)
    rows = job["schema"].get("rows") or 1000
    console.print(
        f"job [bold]{job['id']}[/] drafted by {job['drafter']}. Review, then:\n"
        f"  synth tabular confirm {job['id']} --rows {rows}\n"
        f"  (edit first: synth tabular show {job['id']} --json > schema.json, change it, then\n"
        f"   synth tabular edit {job['id']} schema.json)"
    )


@tabular_app.command("fit")
def tabular_fit(
    sample: str = typer.Argument(
        ..., help="A CSV or Parquet sample of the real table (a file here, or s3://bucket/key)."
    ),
    rows: int | None = typer.Option(None, "--rows", min=1, help="Rows to generate later."),
    seed: int = typer.Option(0, min=0, help="Seed of the holdout split and the fit."),
    confirm: bool = typer.Option(
        False, "--confirm", help="Confirm right away with --rows (skip the review)."
    ),
    api: str = API_OPTION,
    api_key: str = typer.Option(
        ..., envvar="SYNTH_API_KEY", help="Your API key (or SYNTH_API_KEY).", show_default=False
    ),
) -> None:
    """Fit a model to a real sample: the inferred schema is shown for review, as a draft is."""
    if not sample.startswith("s3://") and not Path(sample).is_file():
        _fail(f"{sample} is not a file")
    client = _tabular_client(api)
    try:
        job = client.fit(sample, api_key, rows=rows, seed=seed)
    except SynthError as exc:
        _fail(str(exc))
    print_schema(job)
    split = job["sample"]
    console.print(
        f"job [bold]{job['id']}[/] fitted to {split['filename']}: {split['train_rows']:,} rows "
        f"to fit, {split['holdout_rows']:,} held out for the privacy checks."
    )
    _confirm_or_review(
        client,
        job,
        confirm,
        f"\n  (edit first: synth tabular show {job['id']} --json > schema.json, then\n"
        f"   synth tabular edit {job['id']} schema.json)",
    )


def _confirm_or_review(client, job: dict, confirm: bool, review: str) -> None:
    """Confirm a fitted `job` at its row count (--confirm), or say how to once reviewed."""
    rows = job["schema"].get("rows")
    if not confirm:
        console.print(f"Review, then:\n  synth tabular confirm {job['id']} --rows {rows}{review}")
        return
    try:
        client.confirm(job["id"], total_rows=rows)
    except SynthError as exc:
        _fail(str(exc))
    each = " of each root table" if job.get("tables") else ""
    console.print(f"confirmed: {rows:,} rows{each}. Follow it: synth tabular status {job['id']}")


@tabular_app.command("fit-tables")
def tabular_fit_tables(
    samples: list[str] = typer.Argument(
        ..., help="One CSV or Parquet sample per table (files here, or s3://bucket/key)."
    ),
    key: list[str] = typer.Option(
        ..., "--key", help="A foreign key: child.column=parent.column (repeat for each)."
    ),
    rows: int | None = typer.Option(
        None, "--rows", min=1, help="Rows of each root table (default: its sample's)."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Fit, generate and check on this machine, writing the Parquet files and reports "
        "here (no job); without it, a job is created on the API.",
    ),
    seed: int = typer.Option(0, min=0, help="Seed of the holdout split, the fit and sampling."),
    confirm: bool = typer.Option(
        False, "--confirm", help="Confirm the job right away (skip the review)."
    ),
    api: str = API_OPTION,
    api_key: str | None = typer.Option(
        None, envvar="SYNTH_API_KEY", help="Your API key (or SYNTH_API_KEY).", show_default=False
    ),
) -> None:
    """Fit tables joined by keys (customers -> orders -> items): a job, reviewed and confirmed
    as any fitted job, whose tables are generated with every key intact and checked one by one;
    or, with --out, the same fit and checks on this machine, written when each table passes."""
    for sample in samples:
        if not sample.startswith("s3://") and not Path(sample).is_file():
            _fail(f"{sample} is not a file")
    if out is None:
        _fit_tables_job(samples, key, rows, seed, confirm, api, api_key)
    else:
        _fit_tables_here([Path(s) for s in samples], key, rows, seed, out)


def _fit_tables_job(
    samples: list[str],
    keys: list[str],
    rows: int | None,
    seed: int,
    confirm: bool,
    api: str,
    api_key: str | None,
) -> None:
    if not api_key:
        _fail("an API key is needed to create the job: --api-key or SYNTH_API_KEY")
    client = _tabular_client(api)
    try:
        job = client.fit_tables(samples, keys, api_key, rows=rows, seed=seed)
    except SynthError as exc:
        _fail(str(exc))
    print_schema(job)
    tables = job["sample"]["tables"]
    split = ", ".join(
        f"{name} {t['train_rows']:,}/{t['holdout_rows']:,}" for name, t in tables.items()
    )
    console.print(
        f"job [bold]{job['id']}[/] fitted to {len(tables)} tables (rows to fit/held out: {split})."
    )
    _confirm_or_review(client, job, confirm, "   (rows of each root table)")


def _fit_tables_here(paths: list[Path], keys: list[str], rows: int | None, seed: int, out: Path):
    from synth_pipelines.core.tabular.fitted.related import fit_related
    from synth_pipelines.settings import Settings

    if rows is None:
        _fail("--rows is required with --out (rows of each root table)")
    tabular = Settings.from_env().tabular
    try:
        with console.status("fitting and generating…"):
            results = fit_related(
                paths, keys, rows=rows, out_dir=out, seed=seed,
                max_bytes=tabular.sample_max_bytes, holdout_share=tabular.holdout_share,
                min_category_count=tabular.min_category_count,
                max_dcr_share=tabular.max_dcr_share,
                max_identical_share=tabular.max_identical_share,
                min_quality=tabular.min_quality,
            )  # fmt: skip
    except SynthError as exc:
        _fail(str(exc))
    table = Table(title="fitted tables")
    for header in ("table", "rows", "quality", "DCR share", "identical", "orphan keys"):
        table.add_column(header, justify="left" if header == "table" else "right")
    for r in results:
        quality = "n/a" if r.quality is None else f"{r.quality:.1%}"
        table.add_row(r.name, f"{r.rows:,}", quality, f"{r.dcr_share:.1%}",
                      f"{r.identical_share:.2%}", str(sum(r.orphans.values())))  # fmt: skip
    console.print(table)
    failed = [f"{r.name}: {'; '.join(r.failures)}" for r in results if r.failures]
    if failed:
        _fail("not written, a privacy check or a key failed: " + " | ".join(failed))
    console.print(f"written to {out}: " + ", ".join(f"{r.name}.parquet" for r in results))


@tabular_app.command("show")
def tabular_show(
    job_id: str = typer.Argument(...),
    as_json: bool = typer.Option(
        False, "--json", help="Print only the schema as JSON, to edit and pass to `edit`."
    ),
    api: str = API_OPTION,
) -> None:
    """Show a job's schema: as a table, or (--json) as the JSON that `synth tabular edit` takes."""
    import json

    try:
        job = _tabular_client(api).status(job_id)
    except SynthError as exc:
        _fail(str(exc))
    if as_json:
        # Plain stdout, no rich markup: the output is a file to edit.
        typer.echo(json.dumps(job["schema"], indent=2, ensure_ascii=False))
        return
    print_schema(job)
    console.print(f"job [bold]{job['id']}[/] is {job['status']}")


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
    print_schema(job)


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
    out: Path | None = typer.Option(
        None, help="When done, download the table here (every table of a multi-table job)."
    ),
    fmt: str = typer.Option("parquet", "--format", help="parquet or csv"),
    table: str | None = typer.Option(
        None, "--table", help="Of a multi-table job, download only this table."
    ),
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
            urls = job.get("download_urls") or {None: job["download_url"]}
            for name, url in urls.items():
                console.print(f"download{f' {name}' if name else ''}: {url}")
            if out is not None:
                for name in [table] if table else urls:
                    console.print(f"saved {client.fetch(job_id, fmt, out, table=name)}")
    except SynthError as exc:
        _fail(str(exc))
