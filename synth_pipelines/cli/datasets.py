"""`synth request`: request a face dataset from the API; with --wait, download and verify it."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from synth_pipelines.cli.common import API_OPTION, _fail, console
from synth_pipelines.core.errors import SynthError


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
