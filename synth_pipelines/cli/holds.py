"""`synth checks holds` and `synth checks lift`: see and lift the delivery holds that failed
error-severity checks placed (core/checks/holds.py)."""

from __future__ import annotations

import getpass

import typer
from rich.markup import escape
from rich.table import Table

from synth_pipelines.cli.checks import checks_app
from synth_pipelines.cli.common import _database, _fail, _settings, console
from synth_pipelines.core.errors import SynthError


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment (a bare container)
        return "unknown"


@checks_app.command("holds")
def checks_holds() -> None:
    """List the open delivery holds: the check, the buckets it pauses, since when, and why."""
    from synth_pipelines.core.checks.holds import open_holds

    holds = open_holds(_database(_settings()))
    if not holds:
        console.print("no open holds: every bucket is delivered from")
        return
    table = Table(title=f"{len(holds)} open hold(s)")
    for column in ("check", "buckets", "since", "why"):
        table.add_column(column, overflow="fold")
    for hold in holds:
        table.add_row(
            hold.check,
            ", ".join(hold.buckets) or "-",
            hold.failed_at.strftime("%Y-%m-%d %H:%M UTC"),
            escape(hold.description[:200]),
        )
    console.print(table)
    console.print("lift one with `synth checks lift CHECK --reason TEXT` (audited)")


@checks_app.command("lift")
def checks_lift(
    check: str = typer.Argument(
        ..., help="The check whose hold to lift (see `synth checks holds`)."
    ),
    reason: str = typer.Option(
        ..., "--reason", help="Why the hold is lifted; kept in the audit log."
    ),
    by: str = typer.Option(None, "--by", help="Who lifts it (default: the login name)."),
) -> None:
    """Lift a delivery hold by hand: its buckets are delivered from again. The lift is written
    to the audit log (`synth audit verify` covers it); a later failure of the check holds again."""
    from synth_pipelines.core.checks.holds import lift_hold

    db = _database(_settings())
    try:
        hold = lift_hold(db, check, actor=by or _login_name(), reason=reason)
    except SynthError as exc:
        _fail(str(exc))
    console.print(
        f"lifted the hold of {hold.check} on {', '.join(hold.buckets) or 'no bucket'}; "
        "the lift is in the audit log"
    )
