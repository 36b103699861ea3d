"""Sign-in with an API key, sign-out, and the home page."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from synth_pipelines.core.errors import AuthenticationError
from synth_pipelines.portal.pages import redirect, render
from synth_pipelines.portal.sessions import (
    SESSION_COOKIE,
    SESSION_HOURS,
    check_csrf,
    require_principal,
    set_cookie,
    sign_in,
)

router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path on this server (no `//host` or scheme): no open redirect through sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return render(request, "home.html", {"me": require_principal(request)})


@router.get("/portal/signin", response_class=HTMLResponse)
def signin_form(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "signin.html", {"next": _safe_next(next), "error": None})


@router.post("/portal/signin", response_model=None)
def signin(
    request: Request, api_key: str = Form(""), next: str = Form("/")
) -> HTMLResponse | RedirectResponse:
    try:
        _, cookie = sign_in(request, api_key)
    except AuthenticationError as exc:
        context = {"next": _safe_next(next), "error": str(exc)}
        return render(request, "signin.html", context, status=401)
    response = redirect(request, _safe_next(next))
    set_cookie(request, response, SESSION_COOKIE, cookie, max_age=SESSION_HOURS * 3600)
    return response


@router.post("/portal/signout")
def signout(request: Request) -> RedirectResponse:
    # The cookie is the session: it goes; revoking the key ends every copy of it.
    response = redirect(request, "/portal/signin")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
