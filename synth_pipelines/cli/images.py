"""`synth images`: profile a real image set, generate a synthetic one to its profile, validate
it, export it — on local folders, with progress bars — or register a set for the image set
line (its sensor runs the same stages as Dagster assets)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.table import Table

from synth_pipelines.cli.common import _database, _fail, _progress, _settings, console
from synth_pipelines.core.errors import SynthError

images_app = typer.Typer(
    help="Image sets: profile, generate to the profile, validate, export; register for Dagster.",
    no_args_is_help=True,
)
FORMATS_HELP = "jsonl, parquet, webdataset, imagefolder or coco (comma-separated)"


def _options(faces: bool | None, ocr: str | None):
    """The stages' options from the settings, with the command's --faces and --ocr over them."""
    import dataclasses

    from synth_pipelines.core.imagesets.pipeline import OCR_MODES, ImageOptions

    options = ImageOptions.from_settings(_settings().images)
    if faces is not None:
        options = dataclasses.replace(options, faces=faces)
    if ocr is not None:
        options = dataclasses.replace(options, ocr=OCR_MODES[ocr])
    return options


def _ticker(progress, description: str, total: int | None):
    task = progress.add_task(description, total=total)

    def advance(done: int, of: int | None = None) -> None:
        progress.update(task, completed=done, total=of or total)

    return advance


def _print_summary(title: str, summary: dict) -> None:
    table = Table(title=title, show_header=False)
    for key, value in summary.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    console.print(table)


@images_app.command("profile")
def images_profile(
    source: str = typer.Argument(
        ..., help="A folder, a .zip, a .parquet of image bytes, an imagefolder or s3://b/prefix"
    ),
    out: Path = typer.Option(None, help="Folder for the profile (default: <name>.profile)"),
    faces: bool = typer.Option(None, "--faces/--no-faces", help="dlib faces (SYNTH_IMAGES_FACES)"),
    ocr: str = typer.Option(None, help="auto, on or off (SYNTH_IMAGES_OCR)"),
    register: bool = typer.Option(
        False, help="Also register the set: the image set sensor generates, validates, exports."
    ),
    count: int = typer.Option(None, min=1, help="With --register: synthetic images to make."),
) -> None:
    """Profile a real image set (streaming): features Parquet, embeddings, profile JSON and an
    HTML report with plots."""
    from synth_pipelines.core.imagesets.pipeline import OCR_MODES, profile_source

    if ocr is not None and ocr not in OCR_MODES:
        _fail(f"--ocr {ocr!r}: auto, on or off")
    out = out or Path(f"{Path(source.rstrip('/')).name or 'images'}.profile")
    try:
        with _progress() as progress:
            result = profile_source(
                source, out, _options(faces, ocr), _ticker(progress, "profiling", None)
            )
    except SynthError as exc:
        _fail(str(exc))
    _print_summary(f"profile of {source}", result.summary)
    profile = json.loads((out / "profile.json").read_text())
    for failure in profile.get("failures", [])[:10]:
        console.print(f"failed: {failure['key']}: {failure['reason']}", markup=False)
    console.print(f"profile: {out}; report: {result.files.get('report', out / 'report')}")
    if register:
        images_register(source, count=count, backend=None, seed=0, formats=None, name="")


@images_app.command("generate")
def images_generate(
    profile: Path = typer.Argument(..., help="A profile folder (synth images profile)"),
    count: int = typer.Option(100, min=1, help="Images to generate."),
    backend: str = typer.Option(None, help="simulation, diffusion or gan (SYNTH_IMAGES_BACKEND)"),
    seed: int = typer.Option(0, min=0),
    truncation: float = typer.Option(None, help="gan: ψ (SYNTH_IMAGES_TRUNCATION)"),
    out: Path = typer.Option(Path("synthetic.parquet"), help="The record file to write."),
) -> None:
    """Generate a synthetic set to a profile (its sizes, brightness, contrast, colour)."""
    from synth_pipelines.core.imagesets.pipeline import generate_set

    images = _settings().images
    try:
        with _progress() as progress:
            result = generate_set(
                profile,
                out,
                backend=backend or images.backend,
                count=count,
                seed=seed,
                truncation=images.truncation if truncation is None else truncation,
                options=_options(None, None),
                progress=_ticker(progress, "generating", count),
            )
    except SynthError as exc:
        _fail(str(exc))
    _print_summary(f"generated {out}", result.summary)


@images_app.command("validate")
def images_validate(
    profile: Path = typer.Argument(..., help="The real set's profile folder"),
    records: Path = typer.Argument(..., help="The synthetic record file (synth images generate)"),
    out: Path = typer.Option(Path("validation"), help="Folder for the reports."),
) -> None:
    """Quality, fidelity and privacy of a synthetic set against the real profile; exits 1 when
    the blocking privacy check fails (a copy of a real image)."""
    from synth_pipelines.core.checks.outcome import ERROR
    from synth_pipelines.core.imagesets.pipeline import validate_set

    try:
        with _progress() as progress:
            result = validate_set(
                profile, records, out, _options(None, "off"), _ticker(progress, "validating", None)
            )
    except SynthError as exc:
        _fail(str(exc))
    table = Table(title=f"validation of {records}")
    for header in ("check", "result", "details"):
        table.add_column(header)
    for outcome in result.outcomes:
        verdict = "skipped" if outcome.skipped else "passed" if outcome.passed else "FAILED"
        table.add_row(outcome.name, verdict, outcome.description)
    console.print(table)
    console.print(
        f"report: {out / 'report.json'}; the set to publish (faces blurred where the real set "
        f"has none, personal text redacted): {out / 'records.parquet'}"
    )
    if any(not o.passed and o.severity == ERROR for o in result.outcomes):
        _fail("a blocking check failed: the set must not be exported")


@images_app.command("export")
def images_export(
    records: Path = typer.Argument(
        ..., help="A record file: validation/records.parquet, the set `validate` cleaned"
    ),
    formats: str = typer.Option("parquet", "--format", help=FORMATS_HELP),
    to: str = typer.Option("exports", help="A local folder, or s3://bucket/prefix"),
) -> None:
    """Export a synthetic set, EXIF and GPS stripped, each format published complete."""
    from synth_pipelines.core.imagesets.pipeline import export_records
    from synth_pipelines.core.storage.object_store import open_object_store

    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    try:
        if to.startswith("s3://"):
            bucket, _, prefix = to[5:].partition("/")
            store = open_object_store(
                "s3", bucket=bucket, endpoint_url=os.environ.get("SYNTH_S3_ENDPOINT_URL")
            )
            prefix = prefix.strip("/") or "exports"
        else:
            folder = Path(to).resolve()
            store, prefix = open_object_store("local", root=str(folder.parent)), folder.name
        with _progress() as progress:
            result = export_records(
                records, store, prefix, chosen, _ticker(progress, "exporting", None)
            )
    except SynthError as exc:
        _fail(str(exc))
    _print_summary(f"exported to {to}", result.summary)


@images_app.command("register")
def images_register(
    source: str = typer.Argument(..., help="A folder, .zip, .parquet, imagefolder or s3://…"),
    count: int = typer.Option(None, min=1, help="Synthetic images (SYNTH_IMAGES_COUNT)."),
    backend: str = typer.Option(None, help="simulation, diffusion or gan"),
    seed: int = typer.Option(0, min=0),
    formats: str = typer.Option(None, help=FORMATS_HELP + " (SYNTH_IMAGES_FORMATS)"),
    name: str = typer.Option("", help="Default: the source's last path segment."),
) -> None:
    """Register an image set with the factory: the image set sensor profiles it, generates,
    validates and exports it (`make ui` shows the runs)."""
    from synth_pipelines.core.imagesets.registry import register_image_set

    settings = _settings()
    images = settings.images
    try:
        row = register_image_set(
            _database(settings),
            source,
            name=name,
            owner=os.environ.get("USER", "cli"),
            backend=backend or images.backend,
            count=count or images.count,
            seed=seed,
            formats=[f.strip() for f in formats.split(",")] if formats else list(images.formats),
            truncation=images.truncation,
        )
    except SynthError as exc:
        _fail(str(exc))
    console.print(f"registered image set {row['id']} ({row['source_kind']}): {row['status']}")


@images_app.command("status")
def images_status(set_id: str = typer.Argument(..., help="The set's id")) -> None:
    """A registered set's status, stage, counts, checks and exports."""
    from synth_pipelines.core.imagesets.registry import get_image_set

    try:
        row = get_image_set(_database(_settings()), set_id)
    except SynthError as exc:
        _fail(str(exc))
    _print_summary(f"image set {set_id}", row)
