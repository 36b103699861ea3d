"""Flux LoRAs end to end over HTTP and a real Dagster instance, on SQLite and PostgreSQL:
consent → photos (encrypted) → subject_sensor → subject_photos → flux_lora (tiny Flux pipeline,
really trained) → flux_lora_samples with checks → registry → generation behind the content
policy → revocation."""

from __future__ import annotations

import base64
import io
import zipfile

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from synth_pipelines.api.app import create_app
from synth_pipelines.api.server import running_server
from synth_pipelines.cli import app as cli
from synth_pipelines.core.security.accounts import create_api_key
from synth_pipelines.core.security.crypto import generate_master_key
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import run_subjects_in_process
from synth_pipelines.lines.flux.sensors import FLUX_JOB
from synth_pipelines.resources.object_store import ObjectStoreResource
from tests.face_photos import subject_photos
from tests.helpers import auth
from tests.launchpad import launchpad_fields, step_failure
from tests.tiny_models import build_tiny_clip


@pytest.fixture
def settings_env(database_url, tmp_path) -> dict[str, str]:
    env = {
        "SYNTH_MASTER_KEY": generate_master_key(),
        "SYNTH_FLUX_BASE_MODEL": "tiny-test",
        "SYNTH_FLUX_TRAIN_STEPS": "6",
        "SYNTH_FLUX_RANK": "4",
        "SYNTH_FLUX_ALPHA": "8",
        "SYNTH_FLUX_TARGET_MODULES": "to_q,to_v",
        "SYNTH_FLUX_CHECKPOINT_EVERY": "3",
        "SYNTH_FLUX_SAMPLE_EVERY": "3",
        "SYNTH_FLUX_SAMPLE_STEPS": "2",
        "SYNTH_FLUX_RESOLUTION": "64",
        "SYNTH_FLUX_SAMPLE_SIZE": "64",
        "SYNTH_FLUX_VALIDATION_PROMPTS": "a photo of [trigger]|[trigger] nude on a beach",
    }
    if not database_url.startswith("sqlite"):
        # The prompt-relevance check with a (tiny) CLIP on PostgreSQL; skipped, and said so, on
        # SQLite.
        env["SYNTH_CLIP_MODEL"] = str(build_tiny_clip(tmp_path / "clip"))
    return env


def post_subject(client, token, files: list[tuple[str, bytes]], consent="true", trigger="sks"):
    return client.post(
        "/subjects",
        files=[("photos", (name, data, "application/octet-stream")) for name, data in files],
        data={"trigger": trigger, "consent": consent},
        headers=auth(token),
    )


def test_subject_to_lora_to_generation_and_revocation(settings, db, tmp_path) -> None:
    client = TestClient(create_app(settings))
    owner = create_api_key(db, "ada", "owner")
    stranger = create_api_key(db, "bob", "owner")
    defs = build_definitions(settings)
    store = ObjectStoreResource(backend="local", root=str(settings.store.root)).get_store()
    photos = subject_photos()
    # A zip of four photos plus one loose photo and one that is not a face.
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for name in list(photos)[:4]:
            zf.writestr(f"trip/{name}", photos[name])
    coffee = io.BytesIO()
    Image.new("RGB", (400, 300), (120, 80, 40)).save(coffee, format="PNG")
    files = [("trip.zip", archive.getvalue()), ("sideways.jpg", photos["sideways.jpg"])]
    files.append(("table.png", coffee.getvalue()))

    refused = post_subject(client, owner, files, consent="false")
    assert refused.status_code == 403 and "consent is required" in refused.json()["detail"]
    assert list(store.list_keys("subjects/")) == []
    created = post_subject(client, owner, files)
    assert created.status_code == 202, created.text
    subject = created.json()
    sid = subject["id"]
    assert subject["status"] == "pending" and subject["uploads"] == 6
    raw = b"".join(store.get_bytes(k) for k in store.list_keys(f"subjects/{sid}/uploads/"))
    assert photos["front.jpg"][200:264] not in raw  # encrypted at rest
    assert client.get(f"/subjects/{sid}", headers=auth(stranger)).status_code == 404

    with dg.instance_for_test() as instance:
        runs, cursor = run_subjects_in_process(defs, instance)
        assert [run.success for run in runs] == [True]
        assert instance.get_dynamic_partitions("subjects") == [sid]
        assert run_subjects_in_process(defs, instance, cursor)[0] == []

        status = client.get(f"/subjects/{sid}", headers=auth(owner)).json()
        assert status["status"] == "ready" and status["photos"] == 5
        assert status["rejected"] == [
            {"name": "table.png", "reason": status["rejected"][0]["reason"]}
        ]
        assert "no face" in status["rejected"][0]["reason"]

        lora_meta = instance.get_latest_materialization_event(
            dg.AssetKey("flux_lora")
        ).asset_materialization.metadata
        assert lora_meta["steps"].value == 6 and lora_meta["version"].value == 1
        samples_meta = instance.get_latest_materialization_event(
            dg.AssetKey("flux_lora_samples")
        ).asset_materialization.metadata
        assert samples_meta["samples"].value == 1  # the nude prompt was refused
        assert "content policy" in str(samples_meta["refused_prompts"].value)
        assert "data:image/png;base64," in samples_meta["preview"].value
        assert samples_meta["intermediate_samples_by_step"].value == {"3": 1, "6": 1}
        checks = {e.check_name: e for run in runs for e in run.get_asset_check_evaluations()}
        if settings.flux.clip_model:
            assert len(samples_meta["prompt_relevance"].value) == 1  # one CLIP score per sample
            assert "mean CLIP score" in checks["prompt_relevance"].description
        else:
            assert "skipped" in samples_meta["prompt_relevance"].value
            assert "prompt_relevance" not in checks
        [identity] = [
            e
            for run in runs
            for e in run.get_asset_check_evaluations()
            if e.check_name == "identity"
        ]
        # Random tiny weights draw no face: the check runs, reports and warns.
        assert not identity.passed and identity.severity == dg.AssetCheckSeverity.WARN

        [lora] = client.get(f"/subjects/{sid}/loras", headers=auth(owner)).json()
        hyper = lora["hyperparameters"]
        assert lora["version"] == 1 and (hyper["rank"], hyper["alpha"]) == (4, 8)
        assert hyper["target_modules"] == ["to_q", "to_v"]
        assert lora["metrics"]["optimizer"] == "AdamW"

        body = {"prompt": "[trigger] on a mountain", "n": 2, "seed": 5}
        generated = client.post(f"/subjects/{sid}/generate", json=body, headers=auth(owner))
        assert generated.status_code == 200, generated.text
        images = [base64.b64decode(i) for i in generated.json()["images"]]
        assert len(images) == 2 and all(Image.open(io.BytesIO(i)).size == (64, 64) for i in images)
        again = client.post(f"/subjects/{sid}/generate", json=body, headers=auth(owner)).json()
        assert again["images"] == generated.json()["images"]  # seeded
        blocked = client.post(
            f"/subjects/{sid}/generate", json={"prompt": "a naked [trigger]"}, headers=auth(owner)
        )
        assert blocked.status_code == 403 and "'naked'" in blocked.json()["detail"]
        too_many = client.post(
            f"/subjects/{sid}/generate", json={"prompt": "x", "n": 50}, headers=auth(owner)
        )
        assert too_many.status_code == 422

        # The same through `synth flux generate` against a live server.
        with running_server(create_app(settings)) as url:
            result = CliRunner().invoke(
                cli,
                ["flux", "generate", sid, "[trigger] on a mountain", "--n", "2", "--seed", "5",
                 "--out", str(tmp_path / "shots"), "--api", url],
                env={"SYNTH_API_KEY": owner},
            )  # fmt: skip
            assert result.exit_code == 0, result.output
            written = sorted((tmp_path / "shots").glob("*.png"))
            assert [p.read_bytes() for p in written] == images
            refused = CliRunner().invoke(
                cli,
                ["flux", "generate", sid, "a nude [trigger]", "--api", url],
                env={"SYNTH_API_KEY": owner},
            )
            assert refused.exit_code == 1 and "HTTP 403" in refused.output

        revoked = client.delete(f"/subjects/{sid}", headers=auth(owner))
        assert revoked.status_code == 200 and revoked.json()["deleted"]["loras"] == 1
        assert list(store.list_keys(f"subjects/{sid}/")) == []
        assert client.get(f"/subjects/{sid}", headers=auth(owner)).status_code == 410
        run_subjects_in_process(defs, instance, cursor)
        assert instance.get_dynamic_partitions("subjects") == []


def test_too_few_usable_photos_fail_the_subject_naming_each(settings, db) -> None:
    client = TestClient(create_app(settings))
    owner = create_api_key(db, "ada", "owner")
    photos = subject_photos()
    blank = io.BytesIO()
    Image.new("RGB", (400, 400), (10, 200, 10)).save(blank, format="PNG")
    files = [*list(photos.items())[:3], ("green.png", blank.getvalue()), ("notes.txt", b"hi")]
    sid = post_subject(client, owner, files).json()["id"]
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        runs, _ = run_subjects_in_process(defs, instance, raise_on_error=False)
        assert [run.success for run in runs] == [False]
    status = client.get(f"/subjects/{sid}", headers=auth(owner)).json()
    assert status["status"] == "failed"
    assert "3 usable photos" in status["error"] and "green.png" in status["error"]
    assert {r["name"] for r in status["rejected"]} >= {"green.png", "notes.txt"}
    retried = client.post(f"/subjects/{sid}/retry", headers=auth(owner))
    assert retried.status_code == 202 and retried.json()["status"] == "pending"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_run_config_sets_training_steps_and_rank_defaulting_to_the_environment(
    settings, db
) -> None:
    client = TestClient(create_app(settings))
    owner = create_api_key(db, "ada", "owner")
    sid = post_subject(client, owner, list(subject_photos().items())[:4]).json()["id"]
    defs = build_definitions(settings)
    fields = launchpad_fields(defs, "flux_lora")
    assert (fields["train_steps"].default_value, fields["rank"].default_value) == (6, 4)
    assert "SYNTH_FLUX_TRAIN_STEPS=6" in fields["train_steps"].description
    job = defs.resolve_job_def(FLUX_JOB)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("subjects", [sid])

        def run(config: dict, only: list[str] | None = None) -> dg.ExecuteInProcessResult:
            return job.execute_in_process(
                partition_key=sid,
                instance=instance,
                asset_selection=[dg.AssetKey(name) for name in only] if only else None,
                run_config={"ops": {"flux_lora": {"config": config}}},
                raise_on_error=False,
            )

        refused = run({"rank": 0}, only=["flux_lora"])
        assert not refused.success
        assert "rank" in step_failure(refused)
        assert "greater than or equal to 1" in step_failure(refused)
        assert run({"train_steps": 2, "rank": 2}).success
        lora = instance.get_latest_materialization_event(
            dg.AssetKey("flux_lora")
        ).asset_materialization.metadata
    assert lora["steps"].value == 2
    assert lora["hyperparameters"].value["rank"] == 2
    [registered] = client.get(f"/subjects/{sid}/loras", headers=auth(owner)).json()
    assert registered["hyperparameters"]["max_steps"] == 2
