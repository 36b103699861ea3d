"""The FastAPI application: shared state, error mapping, routers."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from synth_pipelines.api.admin import Orchestrator
from synth_pipelines.api.body_limits import BodyLimitMiddleware
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
# Swagger UI and ReDoc, committed (versions in its README): /docs and /redoc work offline.
STATIC_DIR = Path(__file__).parent / "static"


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


# Images only from here: ReDoc's sidebar badge is an <img> on cdn.redoc.ly (it hides itself
# when blocked), and the docs pages should ask nothing of another host, online or not.
DOCS_POLICY = {"Content-Security-Policy": "img-src 'self' data:"}


def _self_hosted_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc as FastAPI serves them, on the assets under /static
    instead of a CDN's. URLs start with the request's root path, as FastAPI's own do."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"
    # No validator badge: an <img> from validator.swagger.io, sent this schema's URL.
    swagger_parameters = {"validatorUrl": None, **(app.swagger_ui_parameters or {})}

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=root + app.openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + redirect_url,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=swagger_parameters,
            swagger_js_url=f"{root}/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}/static/swagger-ui/favicon-32x32.png",
        )
        page.headers.update(DOCS_POLICY)
        return page

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_redoc_html(
            openapi_url=root + app.openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}/static/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}/static/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,  # ReDoc falls back to system fonts: no request to Google
        )
        page.headers.update(DOCS_POLICY)
        return page


@asynccontextmanager
async def _close_on_shutdown(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.synth.db.dispose()  # the pooled connections go with the server


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
            "tabular jobs; persona adapters with review-and-approve; image sets profiled, "
            "generated to their profile, validated and exported."
        ),
        version="0.1.0",
        docs_url=None,  # served from STATIC_DIR below, not from a CDN
        redoc_url=None,
        # Every route, present and future: a text the factory DB cannot store is a 422.
        dependencies=[Depends(reject_unstorable_text)],
        lifespan=_close_on_shutdown,
    )
    app.add_middleware(BodyLimitMiddleware)  # an oversized upload is refused unread
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
    from synth_pipelines.api.imagesets import router as imagesets_router
    from synth_pipelines.api.personas import router as personas_router
    from synth_pipelines.api.subjects import router as subjects_router
    from synth_pipelines.api.tabular import router as tabular_router

    app.include_router(datasets_router)
    app.include_router(tabular_router)
    app.include_router(personas_router)
    app.include_router(subjects_router)
    app.include_router(imagesets_router)
    app.include_router(admin_router)
    _valid_schema_references(app)
    _self_hosted_docs(app)
    from synth_pipelines.portal import mount_portal

    mount_portal(app)  # the web pages: / and /portal/…
    return app
