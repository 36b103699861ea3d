"""One guard for every text the API accepts: path and query parameters, JSON bodies (keys and
values, at any depth), form fields and uploaded file names.

A NUL character cannot be stored in a PostgreSQL text column (psycopg raises DataError) and a
lone surrogate ("\\ud800", valid JSON) cannot be encoded as UTF-8 for either database. Both are
refused here, before any handler runs, with a 422 that names the field; no endpoint checks for
them itself. The guard runs as an app-wide dependency, so a new router is covered by being added.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import Request

from synth_pipelines.api.body_limits import FORM_TYPES
from synth_pipelines.core.errors import FieldError


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored as text, or None when it can."""
    if "\x00" in text:
        return "may not contain the NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"is not valid Unicode text: lone surrogate {text[exc.start]!r} at {exc.start}"
    return None


def _json_texts(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field, text) for every string in a parsed JSON value, keys included; fields dotted as in
    the API's other 422s ("columns.0.name")."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (path or "body"), key  # a key is named by the object holding it
            yield from _json_texts(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_texts(item, f"{path}.{index}" if path else str(index))


async def _body_texts(request: Request) -> Iterator[tuple[str, str]]:
    """(field, text) for the body's texts. A body that does not parse is left to FastAPI, which
    answers it with its own 422."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(FORM_TYPES):
        try:
            form = await request.form()  # cached on the request: FastAPI reads the same one
        except Exception:  # malformed multipart: FastAPI's own parsing reports it
            return iter(())
        texts = []
        for name, item in form.multi_items():
            if isinstance(item, str):
                texts.append((name, item))
            else:
                texts.append((f"{name}.filename", item.filename or ""))
        return iter(texts)
    if "json" in content_type:
        body = await request.body()
        if not body.strip():
            return iter(())
        try:
            parsed = json.loads(body)
        except ValueError:  # FastAPI answers invalid JSON with its own 422
            return iter(())
        return _json_texts(parsed, "")
    return iter(())


async def reject_unstorable_text(request: Request) -> None:
    """FieldError (422, naming the field) for the first text that the factory DB cannot store."""
    params = [(f"path.{name}", str(value)) for name, value in request.path_params.items()]
    params += [(f"query.{name}", value) for name, value in request.query_params.multi_items()]
    params += [("query", name) for name in request.query_params]
    for field, text in [*params, *await _body_texts(request)]:
        if problem := text_problem(text):
            raise FieldError(field, f"{field} {problem}")
