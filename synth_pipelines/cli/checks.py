"""`synth checks`: run the data, image-quality and privacy checks and gate on their results."""

from __future__ import annotations

import time

import typer
from rich.table import Table

from synth_pipelines.cli.common import _dagster_home, _database, _fail, _settings, console
from synth_pipelines.core.errors import SynthError

checks_app = typer.Typer(help="Data, image-quality and privacy checks.", no_args_is_help=True)


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
