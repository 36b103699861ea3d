"""`synth serve`: the HTTP API with uvicorn."""

from __future__ import annotations

import typer


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
) -> None:
    """Run the HTTP API (dataset requests, downloads, admin) with uvicorn."""
    from synth_pipelines.api import serve as run_server
    from synth_pipelines.dagster_status import DagsterStatus

    run_server(host=host, port=port, orchestrator=DagsterStatus())
