"""Portal sign-in: an API key (or SYNTH_ADMIN_TOKEN) becomes a signed session cookie, and every
form carries a CSRF token.

The session cookie holds the key's id and an HMAC of the key's stored hash, never the key: each
request looks the key up again, so a revoked key (or a changed admin token) ends its sessions at
once. Cookies are HttpOnly and SameSite=Strict, signed with SYNTH_PORTAL_SECRET (itsdangerous).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from synth_pipelines.api.common import api_state
from synth_pipelines.core.errors import AuthenticationError
from synth_pipelines.core.security.accounts import Principal, authenticate, key_principal

SESSION_COOKIE = "synth_session"
CSRF_COOKIE = "synth_csrf"
CSRF_FIELD = "csrf_token"
ADMIN_TOKEN_KEY_ID = "admin-token"  # the session of a SYNTH_ADMIN_TOKEN sign-in
SESSION_HOURS = 12
log = logging.getLogger(__name__)


class PortalError(Exception):
    """A page that cannot be shown: rendered as the error page with `status` and `message`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class SignInRequired(Exception):
    """No valid session: the page redirects to the sign-in form (and back afterwards)."""


def portal_secret(environ: os._Environ | dict[str, str] = os.environ) -> str:
    """SYNTH_PORTAL_SECRET, or a random secret for this process with a warning: sessions then
    end when the server restarts (`synth serve --workers N` shares one among its workers)."""
    secret = environ.get("SYNTH_PORTAL_SECRET")
    if secret:
        return secret
    log.warning(
        "SYNTH_PORTAL_SECRET is not set: portal sessions are signed with a random secret and "
        "end when this server restarts"
    )
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Signer:
    """Signs and checks the portal's cookies with one secret."""

    secret: str

    def _serializer(self, salt: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret, salt=f"synth-portal-{salt}")

    def dumps(self, salt: str, value: Any) -> str:
        return self._serializer(salt).dumps(value)

    def loads(self, salt: str, cookie: str | None, max_age: int) -> Any:
        """The signed value, or None for a missing, forged or older than `max_age` s cookie."""
        if not cookie:
            return None
        try:
            return self._serializer(salt).loads(cookie, max_age=max_age)
        except BadSignature:  # SignatureExpired is one
            return None

    def fingerprint(self, material: str) -> str:
        """An HMAC of what a session is bound to (a key's stored hash): useless without it."""
        return hmac.new(self.secret.encode(), material.encode(), hashlib.sha256).hexdigest()[:32]


def signer(request: Request) -> Signer:
    return request.app.state.portal_signer


def _admin_material(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(request: Request, key: str) -> tuple[Principal, str]:
    """The principal for `key` (SYNTH_ADMIN_TOKEN or an API key) and its session cookie's value;
    AuthenticationError as the API raises it for a key it refuses."""
    state = api_state(request)
    key = key.strip()
    if state.admin_token and hmac.compare_digest(key.encode(), state.admin_token.encode()):
        principal = Principal(user="admin", role="admin", key_id=ADMIN_TOKEN_KEY_ID)
        material = _admin_material(state.admin_token)
    else:
        principal = authenticate(state.db, key or None)
        _, material = key_principal(state.db, principal.key_id)
    cookie = signer(request).dumps(
        "session", {"k": principal.key_id, "f": signer(request).fingerprint(material)}
    )
    return principal, cookie


def session_principal(request: Request) -> Principal | None:
    """Who the session cookie names, checked against the key as it is now; None without a valid
    session (no cookie, a forged or expired one, a revoked key, a changed admin token)."""
    if hasattr(request.state, "principal"):
        return request.state.principal
    found = None
    value = signer(request).loads(
        "session", request.cookies.get(SESSION_COOKIE), SESSION_HOURS * 3600
    )
    if isinstance(value, dict):
        found = _still_valid(request, str(value.get("k")), str(value.get("f")))
    request.state.principal = found
    return found


def _still_valid(request: Request, key_id: str, fingerprint: str) -> Principal | None:
    state = api_state(request)
    if key_id == ADMIN_TOKEN_KEY_ID:
        if not state.admin_token:
            return None
        principal = Principal(user="admin", role="admin", key_id=ADMIN_TOKEN_KEY_ID)
        material = _admin_material(state.admin_token)
    else:
        try:
            principal, material = key_principal(state.db, key_id)
        except AuthenticationError:
            return None
    expected = signer(request).fingerprint(material)
    return principal if hmac.compare_digest(expected, fingerprint) else None


def require_principal(request: Request) -> Principal:
    """The signed-in principal; SignInRequired (a redirect to sign-in) otherwise."""
    principal = session_principal(request)
    if principal is None:
        raise SignInRequired()
    return principal


def require_admin(request: Request) -> Principal:
    """An admin principal (admin token or admin API key); a 403 page for anyone else."""
    principal = require_principal(request)
    if not principal.is_admin:
        raise PortalError(
            403,
            f"this page is for admins; you are signed in as {principal.actor}. Sign in with "
            "SYNTH_ADMIN_TOKEN or an admin API key.",
        )
    return principal


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (from its signed cookie, or a new one that `set_cookies`
    stores): every form sends it back in the hidden CSRF_FIELD."""
    if not hasattr(request.state, "csrf"):
        token = signer(request).loads("csrf", request.cookies.get(CSRF_COOKIE), 30 * 24 * 3600)
        request.state.csrf_new = not isinstance(token, str)
        request.state.csrf = token if isinstance(token, str) else secrets.token_urlsafe(32)
    return request.state.csrf


async def check_csrf(request: Request) -> None:
    """Every POST to the portal: its form's CSRF token must match the browser's cookie (403)."""
    if request.method != "POST":
        return
    sent = (await request.form()).get(CSRF_FIELD)
    expected = signer(request).loads("csrf", request.cookies.get(CSRF_COOKIE), 30 * 24 * 3600)
    if not isinstance(sent, str) or not isinstance(expected, str):
        raise PortalError(403, "the form has no CSRF token, or this browser has none: reload the "
                          "page and send the form again")  # fmt: skip
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PortalError(403, "the form's CSRF token does not match this browser's: reload the "
                          "page and send the form again")  # fmt: skip


def set_cookie(request: Request, response: Response, name: str, value: str, **extra: Any) -> None:
    """A portal cookie: HttpOnly, SameSite=Strict, Secure over HTTPS."""
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        **{"path": "/", **extra},
    )


def set_cookies(request: Request, response: Response) -> None:
    """The CSRF cookie, when this request made a new token."""
    if getattr(request.state, "csrf_new", False):
        set_cookie(
            request, response, CSRF_COOKIE, signer(request).dumps("csrf", request.state.csrf)
        )
        request.state.csrf_new = False
