"""The largest form body each upload route takes, judged from its Content-Length before a byte of it
is read.

Parsing a multipart body spools all of it (to disk past 1 MB) before an endpoint sees a file,
and FastAPI parses File and Form parameters (and the app-wide text guard every form) before an
endpoint's own size check runs: a 10 GB upload would be received whole before it could be
refused. So `BodyLimitMiddleware` compares the declared length with the route's limit (from the
settings, with the multipart envelope's allowance) before anything is read, and refuses an
upload without a Content-Length (chunked uploads could otherwise grow without bound). Routes
register their limit here."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.routing import compile_path

from synth_pipelines.core.errors import FieldError

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
ENVELOPE = 64 * 1024  # multipart boundaries, part headers and the small fields beside the file


@dataclass(frozen=True)
class BodyLimit:
    field: str  # the field a 422 names
    limit: Callable[[Any], int]  # bytes, from the app's settings
    setting: str  # the variable that sets it, for the message
    advice: str = ""
    page: bool = False  # a portal form's route: the refusal is an HTML page, not JSON


HTML_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Upload refused</title>'
    '</head><body><h1>Upload refused</h1><p class="error" role="alert">{message}</p>'
    "<p>Go back and choose smaller files.</p></body></html>"
)


LIMITS: dict[tuple[str, str], BodyLimit] = {}
_PATTERNS: dict[tuple[str, str], re.Pattern] = {}


def body_limit(method: str, path: str, rule: BodyLimit) -> None:
    """Register the largest body `method path` (a route's path template) takes."""
    LIMITS[(method.upper(), path)] = rule
    _PATTERNS[(method.upper(), path)] = compile_path(path)[0]


def declared_size_problem(scope: dict, settings: Any) -> tuple[FieldError, BodyLimit] | None:
    """The FieldError (and the route's limit) for an upload to a limited route with no
    Content-Length or a larger one than the route takes; None otherwise (and for every other
    request)."""
    if scope["type"] != "http" or scope["method"] not in {m for m, _ in LIMITS}:
        return None
    headers = {k.decode("latin1").lower(): v.decode("latin1") for k, v in scope["headers"]}
    if not headers.get("content-type", "").lower().startswith(FORM_TYPES):
        return None
    route = next(
        (key for key, pattern in _PATTERNS.items()
         if key[0] == scope["method"] and pattern.match(scope["path"])),
        None,
    )  # fmt: skip
    if route is None:
        return None
    rule = LIMITS[route]
    declared = headers.get("content-length")
    if declared is None or not declared.isdigit():
        return FieldError(rule.field, "an upload needs a Content-Length header"), rule
    limit = rule.limit(settings)
    if int(declared) <= limit + ENVELOPE:
        return None
    problem = FieldError(
        rule.field,
        f"the upload is {int(declared):,} bytes, over the {rule.field} limit of {limit:,} "
        f"({rule.setting}){': ' + rule.advice if rule.advice else ''}",
    )
    return problem, rule


class BodyLimitMiddleware:
    """ASGI middleware: a 422 for an oversized upload, sent before the body is read. (FastAPI
    parses a route's File and Form parameters before its dependencies run, so a dependency
    would see the limit only after the body had been received.)"""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        found = None
        if scope["type"] == "http":
            app = scope["app"]
            found = declared_size_problem(scope, app.state.synth.settings)
        if found is None:
            await self.app(scope, receive, send)
            return
        problem, rule = found
        if rule.page:
            body = HTML_PAGE.format(message=html.escape(str(problem))).encode()
            media = b"text/html; charset=utf-8"
        else:
            body = json.dumps({"detail": str(problem), "field": problem.field}).encode()
            media = b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": 422,
                "headers": [
                    (b"content-type", media),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),  # the unread body ends the connection
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
