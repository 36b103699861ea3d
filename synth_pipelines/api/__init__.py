"""The HTTP API: dataset requests, status, downloads and admin (FastAPI)."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Collect once and move what start-up allocated (FastAPI, pydantic, SQLAlchemy: ~150,000
    objects) out of the collector's sight: a full collection scanned them all, an 80 ms pause
    that landed on some request every few thousand."""
    gc.collect()
    gc.freeze()


def serve(host: str = "127.0.0.1", port: int = 8000, orchestrator=None) -> None:
    """Run the API with uvicorn on the settings from the environment; `orchestrator` as in
    `create_app`."""
    import uvicorn

    from synth_pipelines.api.app import create_app

    app = create_app(orchestrator=orchestrator)
    settle_heap()
    uvicorn.run(app, host=host, port=port, log_level="info")
