"""The `synth` command: run the factory from a terminal (Typer + rich).

`app` is the console script (`synth = "synth_pipelines.cli:app"`); each command group lives in
its own module and is registered here. Its callback runs before every command: the ML libraries'
progress bars, logs and deprecation warnings stay off unless --verbose (cli/quiet.py).
"""

from __future__ import annotations

import typer

from synth_pipelines.cli.checks import checks_app
from synth_pipelines.cli.datasets import request
from synth_pipelines.cli.db import db_app
from synth_pipelines.cli.demo import demo
from synth_pipelines.cli.flux import flux_app
from synth_pipelines.cli.holds import checks_holds, checks_lift
from synth_pipelines.cli.images import images_app
from synth_pipelines.cli.inventory import inventory
from synth_pipelines.cli.quiet import quiet_third_party
from synth_pipelines.cli.security import apikeys_app, audit_app, keys_app
from synth_pipelines.cli.serve import serve
from synth_pipelines.cli.tabular import tabular_app

app = typer.Typer(
    help="synth_pipelines: a synthetic-data factory on Dagster.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    verbose: bool = typer.Option(
        False,
        "--verbose",
        envvar="SYNTH_VERBOSE",
        help="Show the ML libraries' own progress bars, logs and warnings.",
    ),
) -> None:
    """Runs before every command: the ML libraries kept quiet unless --verbose."""
    if not verbose:
        quiet_third_party()


# `synth --help` lists the commands, then the groups, each in the order registered here.
app.command()(inventory)
app.command()(demo)
app.command()(serve)
app.command()(request)
app.add_typer(db_app, name="db")
app.add_typer(tabular_app, name="tabular")
app.add_typer(checks_app, name="checks")
app.add_typer(keys_app, name="keys")
app.add_typer(apikeys_app, name="apikeys")
app.add_typer(flux_app, name="flux")
app.add_typer(images_app, name="images")
app.add_typer(audit_app, name="audit")
# `synth checks holds|lift` live in cli/holds.py, registered on checks_app when imported.
_ = (checks_holds, checks_lift)
