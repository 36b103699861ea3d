"""The LLM through the product: drafting over the API with SYNTH_LLM_BASE_URL, an unreachable
endpoint as a clear 503, and `source: llm` columns filled inside a real tabular_dataset run.
The OpenAI-compatible server is tests/openai_server.py on 127.0.0.1 (the external API's
stand-in)."""

from __future__ import annotations

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from synth_pipelines.api.app import create_app
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.tabular.jobs import JobParams, confirm_job, create_job, get_job
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import run_tabular_jobs_in_process
from synth_pipelines.settings import Settings
from tests.helpers import free_port
from tests.test_tabular_jobs import read_output
from tests.test_tabular_llm import GOOD_SCHEMA, REVIEWS, good_rows


@pytest.fixture
def settings(synth_home, server, monkeypatch) -> Settings:
    monkeypatch.setenv("SYNTH_LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("SYNTH_LLM_MODEL", "test-model")
    monkeypatch.setenv("SYNTH_TABULAR_EMBEDDER", "hashing")
    monkeypatch.setenv("SYNTH_TABULAR_WORKERS", "1")
    return Settings.from_env()


def test_the_api_drafts_with_the_configured_llm(settings, server) -> None:
    server.reply(GOOD_SCHEMA)
    client = TestClient(create_app(settings))
    response = client.post("/tabular/jobs", json={"prompt": "10k transactions, please"})
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["drafter"] == "llm:test-model"
    assert [c["name"] for c in job["schema"]["columns"]] == [
        "user_id", "amount", "currency", "timestamp",
    ]  # fmt: skip
    (request,) = server.requests
    assert request.body["model"] == "test-model"
    assert request.body["response_format"]["type"] == "json_schema"


def test_an_unreachable_llm_is_a_503_naming_the_endpoint(synth_home, monkeypatch) -> None:
    port = free_port()  # a port nothing listens on
    monkeypatch.setenv("SYNTH_LLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
    client = TestClient(create_app(Settings.from_env()))
    response = client.post("/tabular/jobs", json={"prompt": "1k users with name and email"})
    assert response.status_code == 503
    assert f"127.0.0.1:{port}" in response.json()["detail"]


def test_llm_columns_are_filled_inside_a_real_run(settings, server) -> None:
    server.handler = good_rows
    db = FactoryDatabase(settings.database_url)
    db.upgrade()
    job = create_job(db, "reviews", REVIEWS, "offline")
    confirm_job(
        db,
        job.id,
        JobParams(total_rows=120, chunk_size=60, max_workers=1, dedup_threshold=1.0, seed=1),
    )
    with dg.instance_for_test() as instance:
        (run,), _ = run_tabular_jobs_in_process(build_definitions(settings), instance)
    assert run.success
    done = get_job(db, job.id)
    assert done.status == "completed" and done.llm_rejects == 0
    rows = read_output(settings, done.outputs["parquet"]).to_pylist()
    assert len(rows) == 120
    assert all(
        row["review"] == f"Review of item {row['id']}: {row['rating']} stars." for row in rows
    )
    assert all(row["code"] == f"R-{row['id']:03d}" for row in rows)
    assert len(server.requests) >= 3  # batches of rows, in parallel threads
