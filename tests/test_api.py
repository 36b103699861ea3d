"""The HTTP API: a live uvicorn for the full flow, TestClient for the edges."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dagster as dg
import httpx
import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient

from synth_pipelines.api.app import create_app
from synth_pipelines.api.server import running_server
from synth_pipelines.core.delivery.client import DatasetClient
from synth_pipelines.core.delivery.requests import utcnow
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.storage.models import DatasetRequest
from synth_pipelines.definitions import build_definitions
from synth_pipelines.partitions import partition_for_bucket
from synth_pipelines.sensors.datasets import package_requests_in_process
from synth_pipelines.sensors.inventory import REFILL_JOB, refill_run_config
from synth_pipelines.settings import Settings

TOKEN = "s3cret-admin-token"


@pytest.fixture
def settings(synth_home, database_url, monkeypatch) -> Settings:
    monkeypatch.setenv("SYNTH_DATABASE_URL", database_url)
    monkeypatch.setenv("SYNTH_TARGET_PER_BUCKET", "4")
    monkeypatch.setenv("SYNTH_FACE_SIZE", "64")
    monkeypatch.setenv("SYNTH_MAX_DATASET_SIZE", "50")
    monkeypatch.setenv("SYNTH_ADMIN_TOKEN", TOKEN)
    return Settings.from_env()


@pytest.fixture
def client(settings) -> TestClient:
    return TestClient(create_app(settings))


def fill(settings, instance, bucket: Bucket, count: int) -> dg.Definitions:
    defs = build_definitions(settings)
    defs.resolve_job_def(REFILL_JOB).execute_in_process(
        partition_key=str(partition_for_bucket(bucket)),
        run_config=refill_run_config(count),
        instance=instance,
    )
    return defs


def run_sensor_and_packages(defs: dg.Definitions, instance) -> int:
    runs, _ = package_requests_in_process(defs, instance)
    assert all(run.success for run in runs)
    return len(runs)


@pytest.fixture
def live_server(settings):
    with running_server(create_app(settings)) as url:
        yield url


def test_full_flow_over_http(settings, live_server, tmp_path: Path) -> None:
    with dg.instance_for_test() as instance:
        defs = fill(settings, instance, Bucket("female", "adult"), 4)
        api = DatasetClient(live_server)
        created = api.submit({"buckets": {"female/adult": 3}, "format": "zip", "image_size": 64})
        assert created["status"] == "pending"
        assert api.status(created["id"])["download_url"] is None  # shown once, at creation
        assert run_sensor_and_packages(defs, instance) == 1
        ready = api.wait(created["id"], timeout=10)
        assert ready["counts"]["delivered"] == {"female/adult": 3}
        assert ready["queue_to_ready_seconds"] > 0
        archive = api.download(created["download_url"], tmp_path)
        manifest, folder = api.verify_and_extract(archive, tmp_path)
        assert manifest["counts"]["total"] == 3
        assert len(list((folder / "images" / "female" / "adult").glob("*.png"))) == 3
        assert api.status(created["id"])["downloads"] == 1
        # A wrong code answers like an unknown dataset.
        wrong = httpx.get(f"{live_server}/datasets/{created['id']}/download/nope")
        assert wrong.status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"buckets": {"female/elder": 2}}, "buckets.female/elder", "female/senior"),
        ({"buckets": {"female/adult": 0}}, "buckets.female/adult", "at least 1"),
        ({"buckets": {"female/adult": 51}}, "buckets", "at most 50"),
        ({"buckets": {"female/adult": 1}, "format": "tar"}, "format", "zip, webdataset"),
        ({"buckets": {"female/adult": 1}, "image_size": 5000}, "image_size", "32 to 1024"),
        ({"buckets": {"female/adult": "many"}}, "buckets.female/adult", "valid integer"),
        ({"buckets": {}}, "buckets", "female/adult"),
    ],
)
def test_bad_requests_are_422_naming_the_field(client, body, field, words) -> None:
    response = client.post("/datasets", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert words in response.json()["detail"]


def test_status_aliases_retry_and_download_states(client, settings) -> None:
    created = client.post("/dataset/request", json={"buckets": {"male/teen": 2}}).json()
    assert client.get(f"/dataset/status/{created['id']}").json()["status"] == "pending"
    assert client.get("/datasets/unknown").status_code == 404
    assert client.post(f"/datasets/{created['id']}/retry").status_code == 409
    code = created["download_url"].rsplit("/", 1)[1]
    not_ready = client.get(f"/dataset/download/{created['id']}/{code}")
    assert not_ready.status_code == 409
    assert "pending" in not_ready.json()["detail"]


def test_expired_link_is_410(client, settings) -> None:
    created = client.post("/datasets", json={"buckets": {"male/teen": 1}}).json()
    db = client.app.state.synth.db
    with db.session() as session:
        row = session.get(DatasetRequest, created["id"])
        row.status, row.archive_key = "ready", "datasets/x.zip"
        row.expires_at = utcnow() - timedelta(seconds=1)
    response = client.get(created["download_url"].replace("http://testserver", ""))
    assert response.status_code == 410
    assert client.get(f"/datasets/{created['id']}").json()["status"] == "expired"


def test_admin_endpoints_need_the_token(client) -> None:
    assert client.get("/admin/metrics").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/admin/system-status", headers=wrong).status_code == 403
    auth = {"Authorization": f"Bearer {TOKEN}"}
    client.post("/datasets", json={"buckets": {"male/teen": 1}})
    metrics = client.get("/admin/metrics", headers=auth).json()
    assert metrics["requests"]["pending"] == 1
    assert metrics["inventory"]["male/teen"] == 0
    assert set(metrics) >= {
        "avg_completion_seconds", "p95_completion_seconds", "total_downloads",
        "refill_runs_in_flight", "backordered", "completed_jobs",
    }  # fmt: skip
    status = client.get("/admin/system-status", headers=auth).json()
    assert status["database"]["ok"] and status["object_store"]["ok"]
    assert "dagster" in status


def test_s3_store_downloads_redirect_to_a_presigned_url(
    settings, moto_endpoint, aws_credentials, monkeypatch, tmp_path
) -> None:
    from tests.conftest import make_bucket

    monkeypatch.setenv("SYNTH_STORE", "s3")
    monkeypatch.setenv("SYNTH_S3_BUCKET", make_bucket(moto_endpoint))
    monkeypatch.setenv("SYNTH_S3_ENDPOINT_URL", moto_endpoint)
    s3_settings = Settings.from_env()
    client = TestClient(create_app(s3_settings))
    with dg.instance_for_test() as instance:
        defs = fill(s3_settings, instance, Bucket("male", "adult"), 2)
        created = client.post("/datasets", json={"buckets": {"male/adult": 2}}).json()
        run_sensor_and_packages(defs, instance)
    path = created["download_url"].replace("http://testserver", "")
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 307
    archive = tmp_path / "from-s3.zip"
    archive.write_bytes(httpx.get(response.headers["location"]).content)
    from synth_pipelines.core.delivery.archive import verify_archive

    assert verify_archive(archive)["counts"]["total"] == 2


def test_openapi_fuzzing_finds_no_server_errors(settings) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=25, deadline=None, suppress_health_check=list(hypothesis.HealthCheck)
        )
        def fuzz(case) -> None:
            case.call_and_validate(checks=[schemathesis.checks.not_a_server_error])

        fuzz()
