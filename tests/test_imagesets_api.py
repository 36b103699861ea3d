"""The image set endpoints over HTTP: an API key is needed, a path on the server's disk needs an
admin, a set is its owner's, bad input is a 422 naming the field, retry only after failure."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from synth_pipelines.api.app import create_app
from synth_pipelines.core.imagesets.registry import update_image_set
from synth_pipelines.core.security.accounts import create_api_key
from tests.helpers import auth


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {"SYNTH_IMAGES_COUNT": "12", "SYNTH_IMAGES_FORMATS": "coco,parquet"}


def test_register_follow_and_retry(settings, db, tmp_path) -> None:
    admin = create_api_key(db, "root", "admin")
    owner = create_api_key(db, "ada", "owner")
    other = create_api_key(db, "bob", "owner")
    with TestClient(create_app(settings)) as client:
        assert client.post("/imagesets", json={"source": str(tmp_path)}).status_code == 401
        refused = client.post("/imagesets", json={"source": str(tmp_path)}, headers=auth(owner))
        assert refused.status_code == 403 and "admin" in refused.json()["detail"]

        created = client.post("/imagesets", json={"source": str(tmp_path), "seed": 4},
                              headers=auth(admin))  # fmt: skip
        assert created.status_code == 202, created.text
        body = created.json()
        assert body["status"] == "pending" and body["source_kind"] == "folder"
        assert body["params"] == {"backend": "simulation", "count": 12, "seed": 4,
                                  "formats": ["coco", "parquet"], "truncation": 0.7}  # fmt: skip

        mine = client.post("/imagesets", json={"source": "s3://street-scenes/2024/"},
                           headers=auth(owner)).json()  # fmt: skip
        assert mine["owner"] == "ada" and mine["source_kind"] == "s3"
        assert client.get(f"/imagesets/{mine['id']}", headers=auth(owner)).status_code == 200
        assert client.get(f"/imagesets/{mine['id']}", headers=auth(other)).status_code == 404
        assert [s["id"] for s in client.get("/imagesets", headers=auth(owner)).json()] == [
            mine["id"]
        ]
        assert len(client.get("/imagesets", headers=auth(admin)).json()) == 2

        early = client.post(f"/imagesets/{mine['id']}/retry", headers=auth(owner))
        assert early.status_code == 409 and "only a failed set" in early.json()["detail"]
        update_image_set(db, mine["id"], status="failed", error="bucket unreachable")
        again = client.post(f"/imagesets/{mine['id']}/retry", headers=auth(owner)).json()
        assert (again["status"], again["attempts"]) == ("pending", 1)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"source": "s3://"}, "s3://<bucket>"),
        ({"source": "s3://b-1/x", "backend": "vae"}, "backend"),
        ({"source": "s3://b-1/x", "count": 0}, "count must be"),
        ({"source": "s3://b-1/x", "formats": ["tiff"]}, "formats"),
        ({"source": "s3://b-1/x", "colour": "red"}, "colour"),
    ],
)
def test_bad_bodies_are_422s(settings, db, body, words) -> None:
    token = create_api_key(db, "ada", "owner")
    with TestClient(create_app(settings)) as client:
        answer = client.post("/imagesets", json=body, headers=auth(token))
    assert answer.status_code == 422 and words in answer.text, answer.text
