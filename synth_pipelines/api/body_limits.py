"""The largest form body each upload route takes, judged from its Content-Length before a byte of it
is read.

Parsing a multipart body spools all of it (to disk past 1 MB) before an endpoint sees a file,
and the app-wide text guard parses every form: a 10 GB upload would be received whole before
an endpoint's own size check could refuse it. So the guard first asks `declared_size_problem`,
which compares the declared length with the route's limit (from the settings, with the
multipart envelope's allowance) and refuses an upload without a Content-Length (HTTP/1.1
chunked uploads could otherwise grow without bound). Routes register their limit here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from synth_pipelines.core.errors import FieldError

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
ENVELOPE = 64 * 1024  # multipart boundaries, part headers and the small fields beside the file


@dataclass(frozen=True)
class BodyLimit:
    field: str  # the field a 422 names
    limit: Callable[[Any], int]  # bytes, from the app's settings
    setting: str  # the variable that sets it, for the message
    advice: str = ""


LIMITS: dict[tuple[str, str], BodyLimit] = {}


def body_limit(method: str, path: str, rule: BodyLimit) -> None:
    """Register the largest body `method path` (a route's path template) takes."""
    LIMITS[(method.upper(), path)] = rule


def check_declared_size(request: Request, settings: Any) -> None:
    """FieldError (422) when a route with a limit is sent more than it takes."""
    route = request.scope.get("route")
    rule = LIMITS.get((request.method, getattr(route, "path", "")))
    content_type = request.headers.get("content-type", "").lower()
    if rule is None or not content_type.startswith(FORM_TYPES):
        return
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise FieldError(rule.field, "an upload needs a Content-Length header")
    limit = rule.limit(settings)
    if int(declared) > limit + ENVELOPE:
        raise FieldError(
            rule.field,
            f"the upload is {int(declared):,} bytes, over the {rule.field} limit of {limit:,} "
            f"({rule.setting}){': ' + rule.advice if rule.advice else ''}",
        )
