"""What every portal page shares: the templates, rendering with the signed-in principal and the
CSRF token, form errors in the API's words, and the error page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from synth_pipelines.core.errors import (
    ConflictError,
    GoneError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from synth_pipelines.core.security.crypto import KeyUnavailableError
from synth_pipelines.portal.sessions import (
    CSRF_FIELD,
    PortalError,
    SignInRequired,
    csrf_token,
    session_principal,
    set_cookies,
)

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.filters["utc"] = lambda seconds: datetime.fromtimestamp(seconds, UTC).strftime(
    "%Y-%m-%d %H:%M:%S UTC"
)
# Scripts and styles only from this server: htmx and the copy button are under /portal/static.
POLICY = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """`template` with the principal, the CSRF token and `context`; sets a new CSRF cookie."""
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "principal": session_principal(request),
            "root": root(request),
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token(request),
            **(context or {}),
        },
        status_code=status,
        headers=POLICY,
    )
    set_cookies(request, response)
    return response


def root(request: Request) -> str:
    """The root path the app is served under behind a proxy ("" when none): every link and
    redirect starts with it, as /docs' asset URLs do."""
    return request.scope.get("root_path", "").rstrip("/")


def redirect(request: Request, path: str) -> RedirectResponse:
    """303 to `path` on this portal (after a POST: reloading the next page sends nothing)."""
    return RedirectResponse(root(request) + path, status_code=303)


def form_error(exc: InvalidInputError | ValidationError) -> tuple[str, str | None]:
    """(message, field) as the JSON API's 422 says it: a core error's own message and field, or a
    body model's first error formatted by the app's RequestValidationError handler."""
    if isinstance(exc, ValidationError):
        from synth_pipelines.api.app import _validation_error

        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        return _validation_error(RequestValidationError(errors))
    return str(exc), getattr(exc, "field", None)


# Core's errors on a page: the API's status codes (a persona someone else owns does not exist).
PAGE_STATUS = (
    (NotFoundError, 404),
    (GoneError, 410),
    (PermissionDeniedError, 403),
    (ConflictError, 409),
    (KeyUnavailableError, 503),
)


@contextmanager
def core_errors_as_pages() -> Iterator[None]:
    """Core's NotFound/Gone/PermissionDenied/Conflict/KeyUnavailable errors inside the block
    become the error page with the API's status and message."""
    try:
        yield
    except tuple(kind for kind, _ in PAGE_STATUS) as exc:
        status = next(code for kind, code in PAGE_STATUS if isinstance(exc, kind))
        raise PortalError(status, str(exc)) from None


def sign_in_redirect(request: Request) -> RedirectResponse:
    path = request.url.path.removeprefix(root(request)) or "/"
    target = path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(request, f"/portal/signin?next={quote(target)}")


async def portal_error_page(request: Request, exc: Exception) -> HTMLResponse:
    if isinstance(exc, SignInRequired):
        return sign_in_redirect(request)  # type: ignore[return-value]
    assert isinstance(exc, PortalError)
    return render(request, "error.html", {"status": exc.status, "message": exc.message}, exc.status)
