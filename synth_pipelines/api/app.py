"""The FastAPI application: shared state, error mapping, routers."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from synth_pipelines.api.admin import Orchestrator
from synth_pipelines.api.serving import Serving
from synth_pipelines.api.text_guard import reject_unstorable_text
from synth_pipelines.core.errors import (
    AuthenticationError,
    BusyError,
    ConflictError,
    GoneError,
    InvalidInputError,
    LLMError,
    LLMUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    SynthError,
)
from synth_pipelines.core.security.crypto import (
    IntegrityError,
    KeyUnavailableError,
    KeyWrapper,
    keyring_from_env,
)
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.object_store import ObjectStore, open_object_store
from synth_pipelines.settings import Settings

STATUS_FOR_ERROR = (
    (AuthenticationError, 401),
    (BusyError, 429),
    (PermissionDeniedError, 403),
    (KeyUnavailableError, 503),
    (IntegrityError, 500),
    (LLMUnavailableError, 503),
    (LLMError, 502),
    (InvalidInputError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (GoneError, 410),
    (StorageError, 503),
)


@dataclass
class ApiState:
    """What every handler shares; built once by `create_app`."""

    settings: Settings
    db: FactoryDatabase
    store: ObjectStore
    admin_token: str | None  # SYNTH_ADMIN_TOKEN; None turns the admin endpoints off (503)
    public_url: str | None  # SYNTH_PUBLIC_URL; None: download links use the request's base URL
    serving: Serving  # the models answering inside a request: drafts and images
    orchestrator: Orchestrator | None = None  # refills in flight, sensor ticks (admin endpoints)

    def keys(self) -> KeyWrapper:
        """The master keyring; a 503 naming SYNTH_MASTER_KEY when it is not set."""
        return keyring_from_env()


def build_store(settings: Settings) -> ObjectStore:
    """The object store the assets use: the same options and factory as their resource."""
    return open_object_store(**settings.store_options())


def _validation_error(exc: RequestValidationError) -> tuple[str, str | None]:
    """FastAPI's first validation error as (message naming the field, field)."""
    first = exc.errors()[0]
    loc = [str(part) for part in first["loc"]]
    if first["type"] == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "")
        return f"the body is not valid JSON: {reason}".rstrip(": "), None
    field = ".".join(loc[1:] if loc[:1] == ["body"] else loc) or None
    if field is None:
        return 'the body must be a JSON object, e.g. {"buckets": {"female/adult": 10}}', None
    if first["type"] == "missing":
        return f"{field} is required", field
    try:
        got = json.dumps(first.get("input"))
    except TypeError:
        got = repr(first.get("input"))
    return f"{field}: {first['msg']}, got {got}", field


def _error(status: int, detail: str, field: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail, "field": field}
    return JSONResponse(body, status_code=status)


def _move_embedded_defs(node: Any, components: dict[str, Any]) -> None:
    """Every `$defs` under `node` moved into `components` (components/schemas), and every
    "#/$defs/NAME" reference pointed there."""
    if isinstance(node, dict):
        for name, definition in node.pop("$defs", {}).items():
            _move_embedded_defs(definition, components)  # its own references first
            if components.setdefault(name, definition) != definition:
                raise ValueError(f"two different OpenAPI schemas are named {name!r}")
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
        for value in node.values():
            _move_embedded_defs(value, components)
    elif isinstance(node, list):
        for item in node:
            _move_embedded_defs(item, components)


def _valid_schema_references(app: FastAPI) -> None:
    """A route whose `openapi_extra` embeds a pydantic `model_json_schema()` (the tabular
    schema body) brings its `$defs` along, referenced as "#/$defs/Column": from the document's
    root that names nothing, and ReDoc refuses the whole document over it. The OpenAPI
    document keeps them in components/schemas, where FastAPI puts its own."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()  # also cached as app.openapi_schema: edited in place, once
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            _move_embedded_defs(schema.get("paths", {}), components)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: Settings | None = None, orchestrator: Orchestrator | None = None
) -> FastAPI:
    """The API for `settings` (default: from the environment); migrates the factory DB.

    SYNTH_ADMIN_TOKEN and SYNTH_PUBLIC_URL are read here, once, like the settings.
    `orchestrator` answers the admin endpoints' questions about runs and sensors
    (`synth_pipelines.dagster_status.DagsterStatus`, which `synth serve` passes); the API
    imports no Dagster code itself.
    """
    settings = settings or Settings.from_env()
    db = FactoryDatabase(settings.database_url)
    db.upgrade()
    app = FastAPI(
        title="synth_pipelines",
        description=(
            "Synthetic face datasets from a labelled inventory, delivered through expiring links; "
            "tabular jobs; persona adapters with review-and-approve."
        ),
        version="0.1.0",
        # Every route, present and future: a text the factory DB cannot store is a 422.
        dependencies=[Depends(reject_unstorable_text)],
    )
    app.state.synth = ApiState(
        settings=settings,
        db=db,
        store=build_store(settings),
        admin_token=os.environ.get("SYNTH_ADMIN_TOKEN") or None,
        public_url=(os.environ.get("SYNTH_PUBLIC_URL") or "").rstrip("/") or None,
        serving=Serving(settings),
        orchestrator=orchestrator,
    )

    @app.exception_handler(SynthError)
    async def synth_error(_: Request, exc: SynthError) -> JSONResponse:
        status = next((code for kind, code in STATUS_FOR_ERROR if isinstance(exc, kind)), 500)
        return _error(status, str(exc), getattr(exc, "field", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, *_validation_error(exc))

    from synth_pipelines.api.admin import router as admin_router
    from synth_pipelines.api.datasets import router as datasets_router
    from synth_pipelines.api.personas import router as personas_router
    from synth_pipelines.api.subjects import router as subjects_router
    from synth_pipelines.api.tabular import router as tabular_router

    app.include_router(datasets_router)
    app.include_router(tabular_router)
    app.include_router(personas_router)
    app.include_router(subjects_router)
    app.include_router(admin_router)
    _valid_schema_references(app)
    return app
