"""The factory database going away under a running API: every endpoint that needs it answers
503 naming the database (not a 500), nothing is half-written, and the API recovers by itself
when the database is back. The fault is real: the API reaches PostgreSQL through a TCP relay
on loopback that the test cuts and restores."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url

from synth_pipelines.api.app import create_app
from synth_pipelines.core.delivery.requests import request_counts
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.settings import Settings
from tests.faults import Relay


@pytest.fixture
def relayed_url(pg_database) -> Iterator[tuple[str, Relay]]:
    """A fresh schema on the local PostgreSQL, reached through a relay."""
    url = make_url(pg_database)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    plain = pg_database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    relayed = url.set(host="127.0.0.1", port=relay.port)
    yield f"{relayed.render_as_string(hide_password=False)}?options=-csearch_path%3D{schema}", relay
    relay.cut()


@pytest.fixture
def settings_env(relayed_url) -> dict[str, str]:
    return {"SYNTH_DATABASE_URL": relayed_url[0], "SYNTH_ADMIN_TOKEN": "fault-admin-token-0123"}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the relayed one
def test_the_api_answers_503_naming_the_database_while_it_is_gone_and_recovers(
    settings: Settings, relayed_url
) -> None:
    url, relay = relayed_url
    client = TestClient(create_app(settings))
    made = client.post("/datasets", json={"buckets": {"female/adult": 2}})
    assert made.status_code == 202, made.text
    request_id = made.json()["id"]

    relay.cut()
    where = f"127.0.0.1:{relay.port}"
    for method, path, body in (
        ("GET", f"/datasets/{request_id}", None),
        ("POST", "/datasets", {"buckets": {"male/senior": 1}}),
        ("GET", "/admin/metrics", None),
    ):
        headers = {"Authorization": "Bearer fault-admin-token-0123"}
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 503, (path, response.status_code, response.text)
        detail = response.json()["detail"]
        assert "factory database" in detail and where in detail, detail
        assert "password" not in detail.lower()

    relay.restore()  # back on the same port: the pool reconnects on its own
    assert client.get(f"/datasets/{request_id}").json()["status"] == "pending"
    assert request_counts(FactoryDatabase(url)) == {"pending": 1}  # the refused POST wrote nothing
    again = client.post("/datasets", json={"buckets": {"male/senior": 1}})
    assert again.status_code == 202, again.text
