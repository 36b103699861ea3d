"""Image sets end to end over HTTP and a real Dagster instance, on SQLite and PostgreSQL: a real
set registered → image_set_sensor → profile → synthetic set → validation checks → exports in
every format; a source with no images fails the set with its name and retries; a synthetic set
that copies its real images is stopped by the blocking privacy check and never exported."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from synth_pipelines.api.app import create_app
from synth_pipelines.core.checks.names import IMAGE_VALIDATION, SET_PRIVACY
from synth_pipelines.core.imagesets.demo_images import write_demo_set
from synth_pipelines.core.imagesets.pipeline import RECORDS, set_prefix
from synth_pipelines.core.imagesets.records import write_records
from synth_pipelines.core.imagesets.sources import open_source
from synth_pipelines.core.security.accounts import create_api_key
from synth_pipelines.core.storage.object_store import open_object_store
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import QUIET, run_image_sets_in_process
from synth_pipelines.lines.imagesets.sensors import IMAGE_SET_JOB
from tests.helpers import auth

FORMATS = ["jsonl", "parquet", "webdataset", "imagefolder", "coco"]


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {"SYNTH_IMAGES_COUNT": "16", "SYNTH_IMAGES_OCR": "off"}


@pytest.fixture(scope="module")
def real_set(tmp_path_factory):
    return write_demo_set(tmp_path_factory.mktemp("real"), count=24, seed=1)


def _store(settings):
    return open_object_store(**settings.store_options())


def _register(client: TestClient, token: str, source, **body) -> dict:
    answer = client.post("/imagesets", json={"source": str(source), **body}, headers=auth(token))
    assert answer.status_code == 202, answer.text
    return answer.json()


def test_registered_set_is_profiled_generated_validated_and_exported(
    settings, db, real_set
) -> None:
    admin = create_api_key(db, "root", "admin")
    defs = build_definitions(settings)
    with TestClient(create_app(settings)) as client, dg.instance_for_test() as instance:
        created = _register(client, admin, real_set, formats=FORMATS, seed=5)
        runs, cursor = run_image_sets_in_process(defs, instance)
        assert [run.success for run in runs] == [True]
        assert instance.get_dynamic_partitions("image_sets") == [created["id"]]
        assert run_image_sets_in_process(defs, instance, cursor)[0] == []  # nothing new

        status = client.get(f"/imagesets/{created['id']}", headers=auth(admin)).json()
        assert status["status"] == "ready", status
        assert status["counts"]["real"]["images"] == 24
        assert status["counts"]["synthetic"]["generated"] == 16
        assert status["checks"][SET_PRIVACY]["passed"] is True
        assert sorted(status["exports"]) == sorted(FORMATS)

        checks = {
            e.check_name: e
            for e in runs[0].get_asset_check_evaluations()
            if e.asset_key == dg.AssetKey(IMAGE_VALIDATION)
        }
        assert checks[SET_PRIVACY].passed
        for evaluation in checks.values():  # a failing sample is shown, not only named
            if "failing" in evaluation.metadata:
                assert "data:image/png;base64," in evaluation.metadata["failing_samples"].value
        profile_meta = runs[0].asset_materializations_for_node("image_profile")[0].metadata
        assert profile_meta["images"].value == 24

    store = _store(settings)
    keys = set(store.list_keys(f"{set_prefix(created['id'])}/exports/"))
    for fmt in FORMATS:
        manifest = f"{set_prefix(created['id'])}/exports/{fmt}/manifest.json"
        assert manifest in keys, fmt
        assert json.loads(store.get_bytes(manifest))["counts"]["images"] == 16


def test_a_source_without_images_fails_the_set_and_it_retries(settings, db, tmp_path) -> None:
    admin = create_api_key(db, "root", "admin")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    defs = build_definitions(settings)
    with TestClient(create_app(settings)) as client, dg.instance_for_test() as instance:
        created = _register(client, admin, empty, count=4)
        runs, cursor = run_image_sets_in_process(defs, instance, raise_on_error=False)
        assert [run.success for run in runs] == [False]
        failed = client.get(f"/imagesets/{created['id']}", headers=auth(admin)).json()
        assert failed["status"] == "failed" and str(empty) in failed["error"], failed
        assert failed["error"].startswith("profile:")

        write_demo_set(empty, count=8, seed=2)  # the source fixed, then retried
        client.post(f"/imagesets/{created['id']}/retry", headers=auth(admin)).raise_for_status()
        runs, _ = run_image_sets_in_process(defs, instance, cursor)
        assert [run.success for run in runs] == [True]
        done = client.get(f"/imagesets/{created['id']}", headers=auth(admin)).json()
        assert (done["status"], done["attempts"], done["error"]) == ("ready", 1, None)


def test_copies_of_real_images_are_blocked_from_export(settings, db, real_set, tmp_path) -> None:
    """A generator that memorised its training images: the synthetic set replaced by the real
    images themselves, then validated — the privacy check fails, blocking, and image_export
    does not run."""
    admin = create_api_key(db, "root", "admin")
    defs = build_definitions(settings)
    job = defs.resolve_job_def(IMAGE_SET_JOB)
    with TestClient(create_app(settings)) as client, dg.instance_for_test() as instance:
        created = _register(client, admin, real_set, count=8, formats=["parquet"])
        set_id = created["id"]
        instance.add_dynamic_partitions("image_sets", [set_id])
        first = job.execute_in_process(
            partition_key=set_id,
            instance=instance,
            asset_selection=[dg.AssetKey("image_profile"), dg.AssetKey("synthetic_image_set")],
            run_config={"loggers": QUIET},
        )
        assert first.success
        copies = tmp_path / RECORDS
        write_records(open_source(str(real_set)), copies)
        store = _store(settings)
        store.put_file(f"{set_prefix(set_id)}/synthetic/{RECORDS}", copies)
        shutil.rmtree(settings.home / "imagesets" / set_id / "synthetic", ignore_errors=True)

        second = job.execute_in_process(
            partition_key=set_id,
            instance=instance,
            asset_selection=[dg.AssetKey(IMAGE_VALIDATION), dg.AssetKey("image_export")],
            run_config={"loggers": QUIET},
            raise_on_error=False,
        )
        assert not second.success
        privacy = next(
            e for e in second.get_asset_check_evaluations() if e.check_name == SET_PRIVACY
        )
        assert not privacy.passed
        assert not second.asset_materializations_for_node("image_export")
        status = client.get(f"/imagesets/{set_id}", headers=auth(admin)).json()
        assert status["status"] == "failed" and "privacy" in status["error"]
        assert status["exports"] == {}
    assert not list(store.list_keys(f"{set_prefix(set_id)}/exports/"))
