"""The FastAPI application: shared state, error mapping, routers."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from synth_pipelines.core.errors import (
    ConflictError,
    GoneError,
    InvalidInputError,
    NotFoundError,
    StorageError,
    SynthError,
)
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.object_store import ObjectStore
from synth_pipelines.settings import Settings

STATUS_FOR_ERROR = (
    (InvalidInputError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (GoneError, 410),
    (StorageError, 503),
)


@dataclass
class ApiState:
    settings: Settings
    db: FactoryDatabase
    store: ObjectStore


def build_store(settings: Settings) -> ObjectStore:
    from synth_pipelines.definitions import build_resources

    return build_resources(settings)["object_store"].get_store()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for `settings` (default: from the environment); migrates the factory DB."""
    settings = settings or Settings.from_env()
    db = FactoryDatabase(settings.database_url)
    db.upgrade()
    app = FastAPI(
        title="synth_pipelines",
        description="Synthetic face datasets from inventory, behind expiring links.",
        version="0.1.0",
    )
    app.state.synth = ApiState(settings, db, build_store(settings))

    @app.exception_handler(SynthError)
    async def synth_error(_: Request, exc: SynthError) -> JSONResponse:
        status = next((code for kind, code in STATUS_FOR_ERROR if isinstance(exc, kind)), 500)
        return JSONResponse(
            {"detail": str(exc), "field": getattr(exc, "field", None)}, status_code=status
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"] if part != "body")
        return JSONResponse(
            {"detail": f"{field or 'body'}: {first['msg']}", "field": field or None},
            status_code=422,
        )

    from synth_pipelines.api.admin import router as admin_router
    from synth_pipelines.api.datasets import router as datasets_router

    app.include_router(datasets_router)
    app.include_router(admin_router)
    return app
