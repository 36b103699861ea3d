"""The HTTP API: a live uvicorn for the full flow, TestClient for the edges."""

from __future__ import annotations

import io
import logging
import tarfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import httpx
import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient

from synth_pipelines.api.app import create_app
from synth_pipelines.api.server import running_server
from synth_pipelines.client.datasets import DatasetClient
from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.delivery.requests import mark_ready
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.storage.models import DatasetRequest
from synth_pipelines.dagster_status import DagsterStatus
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import package_requests_in_process
from synth_pipelines.settings import Settings
from tests.helpers import refill

TOKEN = "s3cret-admin-token"


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {
        "SYNTH_TARGET_PER_BUCKET": "4",
        "SYNTH_FACE_SIZE": "64",
        "SYNTH_MAX_DATASET_SIZE": "50",
        "SYNTH_ADMIN_TOKEN": TOKEN,
    }


@pytest.fixture
def client(settings) -> TestClient:
    return TestClient(create_app(settings, orchestrator=DagsterStatus()))


def fill(settings, instance, bucket: Bucket, count: int) -> dg.Definitions:
    defs = build_definitions(settings)
    refill(defs, instance, bucket, count)
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
        assert ready["download_ready"] and ready["expires_at"] and ready["download_url"] is None
        archive = api.download(created["download_url"], tmp_path)
        manifest, folder = api.verify_and_extract(archive, tmp_path)
        assert manifest["counts"]["total"] == 3
        assert len(list((folder / "images" / "female" / "adult").glob("*.png"))) == 3
        again = httpx.get(created["download_url"])
        assert again.content == archive.read_bytes()
        assert again.headers["content-type"] == "application/zip"
        assert again.headers["content-length"] == str(archive.stat().st_size)
        assert again.headers["content-disposition"] == (
            f'attachment; filename="synth-faces-{created["id"]}.zip"'
        )
        assert api.status(created["id"])["downloads"] == 2
        # A wrong code answers like an unknown dataset.
        wrong = httpx.get(f"{live_server}/datasets/{created['id']}/download/nope")
        assert wrong.status_code == 404
        auth = {"Authorization": f"Bearer {TOKEN}"}
        metrics = httpx.get(f"{live_server}/admin/metrics", headers=auth).json()
        assert metrics["requests"]["ready"] == 1 and metrics["completed_jobs"] == 1
        assert metrics["total_downloads"] == 2
        assert 0 < metrics["avg_completion_seconds"] == metrics["p95_completion_seconds"]
        assert metrics["p50_completion_seconds"] == metrics["p95_completion_seconds"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"buckets": {"female/elder": 2}}, "buckets.female/elder", "female/senior"),
        ({"buckets": {"female/adult": 0}}, "buckets.female/adult", "at least 1"),
        ({"buckets": {"female/adult": 51}}, "buckets", "at most 50"),
        ({"buckets": {"female/adult": 1}, "format": "tar"}, "format", "zip, webdataset"),
        ({"buckets": {"female/adult": 1}, "image_size": 5000}, "image_size", "32 to 1024"),
        ({"buckets": {"female/adult": "many"}}, "buckets.female/adult", "valid integer"),
        ({"buckets": {"female/adult": True}}, "buckets.female/adult", "got true"),
        ({"buckets": {"female/adult": 1}, "exclusive": "yes"}, "exclusive", "valid boolean"),
        ({"buckets": {"female/adult": 1}, "format": 5}, "format", "valid string"),
        ({"buckets": {}}, "buckets", "female/adult"),
        ({"format": "zip"}, "buckets", "buckets is required"),
    ],
)
def test_bad_requests_are_422_naming_the_field(client, body, field, words) -> None:
    response = client.post("/datasets", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert words in response.json()["detail"]


@pytest.mark.parametrize(
    ("content", "words"), [(b"{nope", "not valid JSON"), (b"[1, 2]", "must be a JSON object")]
)
def test_a_body_that_is_no_json_object_is_422(client, content, words) -> None:
    response = client.post(
        "/datasets", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["field"] is None
    assert words in response.json()["detail"]


def test_status_aliases_retry_and_download_states(client, settings) -> None:
    assert client.get("/docs").status_code == 200
    created = client.post("/dataset/request", json={"buckets": {"male/teen": 2}}).json()
    assert client.get(f"/dataset/status/{created['id']}").json()["status"] == "pending"
    assert client.get("/datasets/unknown").status_code == 404
    assert client.post(f"/datasets/{created['id']}/retry").status_code == 409
    code = created["download_url"].rsplit("/", 1)[1]
    not_ready = client.get(f"/dataset/download/{created['id']}/{code}")
    assert not_ready.status_code == 409
    assert "pending" in not_ready.json()["detail"]
    assert client.get(f"/datasets/{created['id']}/download/{code}x").status_code == 404
    status = client.get(f"/datasets/{created['id']}").json()
    assert status["downloads"] == 0  # a link tried too early is not a download
    assert not status["download_ready"] and status["download_url"] is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/datasets/a%00b"),
        ("POST", "/datasets/a%00b/retry"),
        ("GET", "/datasets/a%00b/download/code"),
        ("GET", "/dataset/status/%00"),
    ],
)
def test_ids_with_a_nul_are_422_naming_the_path_parameter(client, method, path) -> None:
    # A NUL byte cannot reach PostgreSQL (it would answer 500); the text guard refuses it.
    response = client.request(method, path)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "path.request_id"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/datasets/nope"), ("POST", "/datasets/nope/retry"), ("GET", "/dataset/status/x")],
)
def test_ids_no_request_has_are_404(client, method, path) -> None:
    assert client.request(method, path).status_code == 404


def test_webdataset_archive_streams_as_a_tar(client) -> None:
    created = client.post("/datasets", json={"buckets": {"male/teen": 1}, "format": "webdataset"})
    assert created.status_code == 202
    request_id, url = created.json()["id"], created.json()["download_url"]
    state = client.app.state.synth
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tar:
        info = tarfile.TarInfo("000000.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    key = f"datasets/{request_id}.tar"
    state.store.put_bytes(key, payload.getvalue())
    code, _ = mark_ready(
        state.db,
        request_id,
        archive_key=key,
        archive_bytes=len(payload.getvalue()),
        delivered={"male/teen": 1},
        ttl_seconds=600,
    )
    assert code is None  # the code given out at POST stays the one that works
    response = client.get(url.replace("http://testserver", ""))
    assert response.status_code == 200
    assert response.content == payload.getvalue()
    assert response.headers["content-type"] == "application/x-tar"
    assert response.headers["content-length"] == str(len(payload.getvalue()))
    assert response.headers["content-disposition"] == (
        f'attachment; filename="synth-faces-{request_id}.tar"'
    )
    status = client.get(f"/dataset/status/{request_id}").json()
    assert status["status"] == "ready" and status["download_ready"]
    assert status["counts"] == {"requested": {"male/teen": 1}, "delivered": {"male/teen": 1}}
    assert status["downloads"] == 1 and status["expires_at"]


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
    assert metrics["refill_runs_in_flight"] == {"count": 0, "buckets": []}
    status = client.get("/admin/system-status", headers=auth).json()
    assert status["database"]["ok"] and status["object_store"]["ok"]
    assert status["object_store"]["store"].startswith("local:")
    assert status["dagster"]["ok"] and status["dagster"]["instigators"] == {}


def test_admin_endpoints_are_off_without_a_token(settings, monkeypatch) -> None:
    monkeypatch.delenv("SYNTH_ADMIN_TOKEN")
    client = TestClient(create_app(settings))
    response = client.get("/admin/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503
    assert "SYNTH_ADMIN_TOKEN" in response.json()["detail"]


TICK_TARGET = (
    "from synth_pipelines.definitions import build_definitions\n\ndefs = build_definitions()\n"
)


def tick_sensors_once(instance, home: Path) -> None:
    """One iteration of the real sensor daemon over the code location, in this process."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import (
        InProcessTestWorkspaceLoadTarget,
        create_test_daemon_workspace_context,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._daemon.sensor import execute_sensor_iteration

    target = home / "definitions_target.py"
    target.write_text(TICK_TARGET)
    origin = LoadableTargetOrigin(python_file=str(target), working_directory=str(home))
    load_target = InProcessTestWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin))
    with create_test_daemon_workspace_context(load_target, instance) as context:
        list(execute_sensor_iteration(context, logging.getLogger("test"), None, None))


def test_system_status_shows_each_sensors_last_tick(synth_home, monkeypatch) -> None:
    monkeypatch.setenv("SYNTH_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("SYNTH_TARGET_PER_BUCKET", "2")
    # Queued, not launched: the refill runs the sensor asks for stay in flight.
    (synth_home / "dagster" / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster.core.run_coordinator\n"
        "  class: QueuedRunCoordinator\ntelemetry:\n  enabled: false\n"
    )
    client = TestClient(create_app(orchestrator=DagsterStatus()))
    started = time.time()
    with dg.DagsterInstance.get() as instance:
        tick_sensors_once(instance, synth_home)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status = client.get("/admin/system-status", headers=auth).json()
    assert status["dagster"]["ok"], status["dagster"]
    assert status["dagster"]["storage"] == "SqliteRunStorage"
    sensors = status["dagster"]["instigators"]
    assert sensors["dataset_request_sensor"]["last_tick"]["status"] == "SKIPPED"
    assert sensors["inventory_refill_sensor"]["last_tick"]["status"] == "SUCCESS"
    assert sensors["inventory_refill_sensor"]["last_tick"]["timestamp"] >= started
    refills = client.get("/admin/metrics", headers=auth).json()["refill_runs_in_flight"]
    assert refills["count"] == 10 and "female/adult" in refills["buckets"]


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
    with client.app.state.synth.db.session() as session:
        row = session.get(DatasetRequest, created["id"])
        row.expires_at = utcnow() + timedelta(seconds=600)
    path = created["download_url"].replace("http://testserver", "")
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 307
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert 500 < int(query["X-Amz-Expires"][0]) <= 600  # never outlives the download link
    archive = tmp_path / "from-s3.zip"
    archive.write_bytes(httpx.get(response.headers["location"]).content)
    from synth_pipelines.core.delivery.verify import verify_archive

    assert verify_archive(archive)["counts"]["total"] == 2


def fuzz(operation, headers: dict[str, str], statuses: list[int]) -> None:
    """Up to 25 generated requests to one operation; none may answer 5xx."""

    @hypothesis.given(case=operation.as_strategy())
    @hypothesis.settings(
        max_examples=25, deadline=None, suppress_health_check=list(hypothesis.HealthCheck)
    )
    def call(case) -> None:
        response = case.call_and_validate(
            headers=headers, checks=[schemathesis.checks.not_a_server_error]
        )
        statuses.append(response.status_code)

    call()


def test_openapi_fuzzing_finds_no_server_errors(settings) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6
    statuses: list[int] = []
    admin = {"Authorization": f"Bearer {TOKEN}"}
    for operation in operations:
        fuzz(operation, admin if operation.path.startswith("/admin") else {}, statuses)
    # The fuzzing reached the handlers, not only the validation in front of them.
    assert len(statuses) > 4 * len(operations)
    assert {200, 404, 422} <= set(statuses), sorted(set(statuses))


def test_admin_without_an_orchestrator_says_dagster_is_not_wired(settings) -> None:
    client = TestClient(create_app(settings))  # the API alone: no Dagster code behind it
    auth = {"Authorization": f"Bearer {TOKEN}"}
    refills = client.get("/admin/metrics", headers=auth).json()["refill_runs_in_flight"]
    assert refills["count"] is None and "no orchestrator" in refills["error"]
    status = client.get("/admin/system-status", headers=auth).json()
    assert status["database"]["ok"] and not status["dagster"]["ok"]
    assert "synth serve" in status["dagster"]["error"]
