"""Every text the API accepts, on every route the OpenAPI schema lists: a NUL character (which a
PostgreSQL text column cannot hold) or a lone surrogate is a 422 naming the field, on SQLite and
on PostgreSQL. The cases are derived from the schema, so a new endpoint is covered without
touching this file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from synth_pipelines.api.app import create_app
from synth_pipelines.api.text_guard import text_problem

NUL = "a\x00b"
BOUNDARY = "text-guard-boundary"


@dataclass
class Case:
    """One request that carries `bad` in exactly one text field (`field`, as the 422 names it)."""

    method: str
    path: str
    field: str
    params: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    form: dict[str, str] | None = None
    filename: tuple[str, str] | None = None  # (field, file name) of one uploaded file

    def multipart(self) -> tuple[bytes, dict[str, str]]:
        """The form as a multipart body built by hand: httpx would percent-encode a NUL in a file
        name, a raw client need not."""
        if self.filename:
            name, filename = self.filename
            part = f'name="{name}"; filename="{filename}"\r\nContent-Type: text/plain\r\n\r\nx'
        else:
            ((name, value),) = (self.form or {}).items()
            part = f'name="{name}"\r\n\r\n{value}'
        body = f"--{BOUNDARY}\r\nContent-Disposition: form-data; {part}\r\n--{BOUNDARY}--\r\n"
        return body.encode(), {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.field}"


def _definitions(node: Any) -> dict[str, dict]:
    """Every named schema: components.schemas and the `$defs` nested in any schema."""
    found: dict[str, dict] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("schemas", "$defs") and isinstance(value, dict):
                found.update(value)
            found.update(_definitions(value))
    elif isinstance(node, list):
        for item in node:
            found.update(_definitions(item))
    return found


def _resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        node = spec["_definitions"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _variants(spec: dict, node: dict) -> list[dict]:
    """The non-null alternatives of a schema node (anyOf/oneOf flattened)."""
    node = _resolve(spec, node)
    options = node.get("anyOf") or node.get("oneOf")
    if not options:
        return [node]
    return [v for option in options for v in _variants(spec, option) if v.get("type") != "null"]


def _json_paths(spec: dict, node: dict, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    """(field path, value carrying NUL at that path) for every string a JSON schema allows; each
    level wraps its child's value, so the top level yields whole bodies."""
    if len(path) > 8:  # a recursive schema: deep enough
        return
    for variant in _variants(spec, node):
        kind = variant.get("type")
        if kind == "string":
            yield path, NUL
        elif kind == "object" or "properties" in variant:
            for name, child in (variant.get("properties") or {}).items():
                for sub, value in _json_paths(spec, child, [*path, name]):
                    yield sub, {name: value}
            extra = variant.get("additionalProperties")
            if isinstance(extra, dict):
                yield path or ["body"], {NUL: None}  # a key is named by its object
                for sub, value in _json_paths(spec, extra, [*path, "k"]):
                    yield sub, {"k": value}
        elif kind == "array":
            for sub, value in _json_paths(spec, variant.get("items") or {}, [*path, "0"]):
                yield sub, [value]


def _is_file(spec: dict, node: dict) -> bool:
    return any(
        v.get("format") == "binary"
        or "contentMediaType" in v
        or (v.get("type") == "array" and _is_file(spec, v.get("items", {})))
        for v in _variants(spec, node)
    )


def _form_cases(method: str, path: str, spec: dict, schema: dict) -> Iterator[Case]:
    props = _resolve(spec, schema).get("properties", {})
    files = {name for name, prop in props.items() if _is_file(spec, prop)}
    for name in props:
        if name in files:
            yield Case(method, path, f"{name}.filename", filename=(name, NUL + ".txt"))
        elif any(v.get("type") == "string" for v in _variants(spec, props[name])):
            yield Case(method, path, name, form={name: NUL})


def cases(spec: dict) -> list[Case]:
    spec = {**spec, "_definitions": _definitions(spec)}
    found: list[Case] = []
    for template, operations in spec["paths"].items():
        for method, operation in operations.items():
            params = operation.get("parameters", [])
            path_names = [p["name"] for p in params if p["in"] == "path"]
            for param in params:
                if not any(v.get("type") == "string" for v in _variants(spec, param["schema"])):
                    continue
                values = {name: "x" for name in path_names}
                if param["in"] == "path":
                    values[param["name"]] = NUL
                url = template.format(**{k: quote(v, safe="") for k, v in values.items()})
                if param["in"] == "query":
                    found.append(
                        Case(method, url, f"query.{param['name']}", params={param["name"]: NUL})
                    )
                elif param["in"] == "path":
                    found.append(Case(method, url, f"path.{param['name']}"))
            url = template.format(**{name: "x" for name in path_names})
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                for sub, body in _json_paths(spec, content["application/json"]["schema"], []):
                    found.append(Case(method, url, ".".join(sub), json_body=body))
            for form_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
                if form_type in content:
                    found.extend(_form_cases(method, url, spec, content[form_type]["schema"]))
    return found


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {"SYNTH_ADMIN_TOKEN": "token"}


def test_every_text_field_refuses_nul_naming_it(settings) -> None:
    client = TestClient(create_app(settings))
    found = cases(client.get("/openapi.json").json())
    fields = {(case.path.split("/")[1], case.field) for case in found}
    # The schema really was walked: the reported case and one of each kind of input are here.
    assert ("tabular", "prompt") in fields
    assert any(f.startswith("path.") for _, f in fields)
    assert any(f.startswith("query.") for _, f in fields)
    assert any(f.endswith(".filename") for _, f in fields)
    assert ("subjects", "trigger") in fields
    assert len(found) >= 25, [str(case) for case in found]
    wrong = []
    for case in found:
        content, headers = None, {}
        if case.json_body is not None:
            content, headers = json.dumps(case.json_body), {"content-type": "application/json"}
        elif case.form or case.filename:
            content, headers = case.multipart()
        response = client.request(
            case.method.upper(), case.path, params=case.params, content=content, headers=headers
        )
        body = response.json()
        if (
            response.status_code != 422
            or body.get("field") != case.field
            or "NUL" not in body["detail"]
        ):
            wrong.append((str(case), response.status_code, body))
    assert not wrong, wrong


def test_the_reported_prompt_is_a_422_and_stores_nothing(settings) -> None:
    client = TestClient(create_app(settings))
    response = client.post("/tabular/jobs", json={"prompt": ":A\u0000"})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "prompt"
    assert "NUL" in response.json()["detail"]
    # A lone surrogate is valid JSON but no database can store it as text.
    response = client.post(
        "/tabular/jobs",
        content=b'{"prompt": "orders \\ud800"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert "surrogate" in response.json()["detail"]
    # Nothing of either reached the factory DB, and a clean prompt still works.
    ok = client.post("/tabular/jobs", json={"prompt": "orders with amount and currency"})
    assert ok.status_code == 201, ok.text
    assert client.get(f"/tabular/jobs/{ok.json()['id']}").status_code == 200


@pytest.mark.parametrize(
    ("text", "problem"),
    [("plain", None), ("é and 日本", None), ("a\x00", "NUL"), ("\ud800", "surrogate")],
)
def test_text_problem(text, problem) -> None:
    found = text_problem(text)
    assert (found is None) if problem is None else (problem in found)
