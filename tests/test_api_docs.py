"""The OpenAPI document that /docs and /redoc render: every reference in it resolves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from synth_pipelines.api.app import create_app
from synth_pipelines.api.server import running_server


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'factory.db'}"  # the docs do not depend on the database


@pytest.fixture
def live_server(settings) -> Iterator[str]:
    with running_server(create_app(settings)) as url:
        yield url


def test_every_reference_in_the_openapi_document_resolves(live_server) -> None:
    """ReDoc refuses the whole document over one dangling $ref (e.g. "#/$defs/Column")."""
    spec = httpx.get(f"{live_server}/openapi.json").json()

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    found = set(refs(spec))
    assert "#/components/schemas/Column" in found  # the tabular schema body's nested model
    for ref in found:
        assert ref.startswith("#/"), ref
        target: Any = spec
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(target, dict) and part in target, f"{ref} names nothing"
            target = target[part]
