"""What every `synth` command shares: the consoles, settings and database with errors shown as
one red line and exit code 1, the progress bar, DAGSTER_HOME and the --api option."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synth_pipelines.core.errors import SynthError
from synth_pipelines.local_instance import prepare_dagster_home

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
    home = prepare_dagster_home(settings.dagster_home)  # with a dagster.yaml, telemetry off
    os.environ["DAGSTER_HOME"] = str(home)
    return home
