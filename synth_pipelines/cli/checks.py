"""`synth checks`: run the data, image-quality and privacy checks and gate on their results."""

from __future__ import annotations

import time

import typer
from rich.table import Table

from synth_pipelines.cli.common import _dagster_home, _database, _fail, _settings, console
from synth_pipelines.core.checks.outcome import FAILED, PASSED, SKIPPED, WARNED
from synth_pipelines.core.errors import SynthError

DID_NOT_RUN = "did not run"
# How each result reads in the table: a skipped check is neither a pass nor a failure.
STYLED = {
    PASSED: "[green]pass[/]",
    FAILED: "[red]FAIL[/]",
    WARNED: "[yellow]warn[/]",
    SKIPPED: "[dim]skipped[/]",
    DID_NOT_RUN: "[red]did not run[/]",
}

checks_app = typer.Typer(help="Data, image-quality and privacy checks.", no_args_is_help=True)


@checks_app.command("run")
def checks_run(
    select: list[str] = typer.Option(
        None,
        "--select",
        "-s",
        help="Check name, glob, asset or asset:name (repeatable); default: all.",
    ),
) -> None:
    """Run checks on the local instance and print their results, counted as passed, failed,
    warned and skipped (nothing to check: never a pass, never a failure); exit 1 when an
    error-severity check fails (or a check cannot run), so CI pipelines can gate on it."""
    import dagster as dg

    from synth_pipelines.dbt_like_checks.results import evaluation_status
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
    for column in ("asset", "check", "severity", "result", "details"):
        table.add_column(column, overflow="fold")
    counts = dict.fromkeys((PASSED, FAILED, WARNED, SKIPPED, DID_NOT_RUN), 0)
    for key in keys:
        evaluation = evaluations.get((key.asset_key, key.name))
        asset = key.asset_key.to_user_string()
        if evaluation is None:
            counts[DID_NOT_RUN] += 1
            table.add_row(
                asset, key.name, "-", STYLED[DID_NOT_RUN], "the check raised; see `make ui`"
            )
            continue
        status = evaluation_status(evaluation)
        counts[status] += 1
        severity = "error" if evaluation.severity == dg.AssetCheckSeverity.ERROR else "warn"
        table.add_row(
            asset,
            key.name,
            "-" if status == SKIPPED else severity,
            STYLED[status],
            (evaluation.description or "")[:200],
        )
    console.print(table)
    console.print(", ".join(f"{n} {status}" for status, n in counts.items()))
    if counts[SKIPPED]:
        console.print(
            f"{counts[SKIPPED]} check(s) had nothing to check: skipped, not passed (see details)"
        )
    console.print(f"run {result.run_id} (open it with `make ui`)")
    if counts[FAILED] or counts[DID_NOT_RUN]:
        _fail(f"{counts[FAILED]} error-severity check(s) failed, {counts[DID_NOT_RUN]} did not run")
