"""The HTTP API: dataset requests, status, downloads and admin (FastAPI)."""

from __future__ import annotations


def serve(host: str = "127.0.0.1", port: int = 8000, orchestrator=None) -> None:
    """Run the API with uvicorn on the settings from the environment; `orchestrator` as in
    `create_app`."""
    import uvicorn

    from synth_pipelines.api.app import create_app

    uvicorn.run(create_app(orchestrator=orchestrator), host=host, port=port, log_level="info")
