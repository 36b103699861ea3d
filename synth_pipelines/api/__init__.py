"""The HTTP API: dataset requests, status, downloads and admin (FastAPI)."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Collect once and move what start-up allocated (FastAPI, pydantic, SQLAlchemy: ~150,000
    objects) out of the collector's sight: a full collection scanned them all, an 80 ms pause
    that landed on some request every few thousand."""
    gc.collect()
    gc.freeze()


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    orchestrator=None,
    workers: int = 1,
    app_factory: str | None = None,
) -> None:
    """Run the API with uvicorn on the settings from the environment; `orchestrator` as in
    `create_app`. With `workers` > 1, uvicorn starts that many processes, each building its
    app with `app_factory` ("module:function", no arguments) after this process has checked
    the settings and migrated the factory DB once."""
    import uvicorn

    from synth_pipelines.api.app import create_app

    if workers == 1:
        app = create_app(orchestrator=orchestrator)
        settle_heap()
        uvicorn.run(app, host=host, port=port, log_level="info")
        return
    if app_factory is None:
        raise ValueError("workers > 1 needs app_factory: each worker process builds its own app")
    import os

    from synth_pipelines.core.storage.database import FactoryDatabase
    from synth_pipelines.portal.sessions import portal_secret
    from synth_pipelines.settings import Settings

    # One secret for every worker, or a session signed by one would be refused by the others.
    os.environ["SYNTH_PORTAL_SECRET"] = portal_secret()

    db = FactoryDatabase(Settings.from_env().database_url)
    db.upgrade()
    db.dispose()
    uvicorn.run(app_factory, factory=True, workers=workers, host=host, port=port, log_level="info")
