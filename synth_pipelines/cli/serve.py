"""`synth serve`: the HTTP API with uvicorn."""

from __future__ import annotations

import typer

WORKERS_HELP = (
    "uvicorn worker processes. 1 (the default) suits SQLite, which has one writer at a time; "
    "on PostgreSQL, up to one per CPU. Each worker keeps its own loaded models and Flux limits."
)


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, max=64, envvar="SYNTH_API_WORKERS", help=WORKERS_HELP),
) -> None:
    """Run the HTTP API (dataset requests, downloads, admin) with uvicorn."""
    from synth_pipelines.api import serve as run_server
    from synth_pipelines.dagster_status import DagsterStatus

    run_server(
        host=host,
        port=port,
        orchestrator=DagsterStatus(),
        workers=workers,
        app_factory=f"{__name__}:worker_app",
    )


def worker_app():
    """The app one uvicorn worker process serves (`--workers` > 1): the API with Dagster's
    status for its admin endpoints, as with one worker."""
    from synth_pipelines.api import settle_heap
    from synth_pipelines.api.app import create_app
    from synth_pipelines.dagster_status import DagsterStatus

    app = create_app(orchestrator=DagsterStatus())
    settle_heap()
    return app
