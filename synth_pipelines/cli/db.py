"""`synth db`: the factory database."""

from __future__ import annotations

import typer

from synth_pipelines.cli.common import _database, _settings, console

db_app = typer.Typer(help="The factory database.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the factory database to the latest schema."""
    settings = _settings()
    db = _database(settings)
    # one line, however long the path: a wrapped URL cannot be copied back
    console.print(f"{db.describe()} at revision {db.current_revision()}", soft_wrap=True)
