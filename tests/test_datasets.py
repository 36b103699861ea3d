"""Dataset requests through Dagster: sensor → dataset_package run → archive → ready."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest
from sqlalchemy import select

from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.delivery.requests import get_request, retry_request
from synth_pipelines.core.delivery.spec import DatasetSpec
from synth_pipelines.core.delivery.verify import verify_archive
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.faces.inventory import inventory_levels
from synth_pipelines.core.storage.models import DatasetRequest, Face
from synth_pipelines.definitions import build_definitions
from synth_pipelines.lines.datasets.sensors import PACKAGE_JOB
from synth_pipelines.partitions import dataset_requests
from tests.helpers import evaluate, refill, request

FEMALE_ADULT = Bucket("female", "adult")


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {"SYNTH_TARGET_PER_BUCKET": "4", "SYNTH_FACE_SIZE": "64"}


@pytest.fixture
def defs(settings) -> dg.Definitions:
    return build_definitions(settings)


def tick(defs, instance, cursor: str | None = None) -> dg.SensorResult:
    sensor = defs.resolve_sensor_def("dataset_request_sensor")
    result = evaluate(sensor, instance, defs, cursor)
    for partitions_request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(dataset_requests.name, partitions_request.partition_keys)
    return result


def package(defs, instance, request_id: str, raise_on_error: bool = True):
    instance.add_dynamic_partitions(dataset_requests.name, [request_id])
    return defs.resolve_job_def(PACKAGE_JOB).execute_in_process(
        partition_key=request_id, instance=instance, raise_on_error=raise_on_error
    )


def test_request_is_packaged_into_a_verified_archive(defs, instance, db, tmp_path) -> None:
    refill(defs, instance, FEMALE_ADULT, 4)
    request_id = request(db, {"female/adult": 3})
    result = tick(defs, instance)
    assert [r.partition_key for r in result.run_requests] == [request_id]
    assert result.run_requests[0].run_key == f"{request_id}:0"
    # The cursor remembers the request: the next tick does not pick it again.
    assert tick(defs, instance, result.cursor).run_requests == []

    run = package(defs, instance, request_id)
    (event,) = run.get_asset_materialization_events()
    metadata = event.event_specific_data.materialization.metadata
    assert metadata["faces"].value == 3
    assert metadata["bytes"].value > 0
    assert metadata["queue_to_ready_seconds"].value > 0

    ready = get_request(db, request_id)
    assert ready.status == "ready"
    assert ready.delivered == {"female/adult": 3}
    assert ready.code_hash and ready.expires_at
    store = defs.resources["object_store"].get_store()
    archive = tmp_path / "dataset.zip"
    archive.write_bytes(store.get_bytes(ready.archive_key))
    manifest = verify_archive(archive)
    assert manifest["request_id"] == request_id
    with db.session() as session:
        statuses = sorted(session.scalars(select(Face.status)))
    assert statuses == ["available", "delivered", "delivered", "delivered"]
    assert inventory_levels(db)["female/adult"] == 1


def test_shortfall_backorders_then_refill_sensor_restocks_and_delivers(defs, instance, db) -> None:
    refill(defs, instance, FEMALE_ADULT, 4)
    request_id = request(db, {"female/adult": 6})
    cursor = tick(defs, instance).cursor
    assert package(defs, instance, request_id).get_asset_materialization_events() == []
    backordered = get_request(db, request_id)
    assert backordered.status == "backordered"
    assert "female/adult short by 2" in backordered.reason
    assert inventory_levels(db)["female/adult"] == 4  # nothing stays reserved
    # ticks while stock is short request nothing, and must not forget the request
    short = tick(defs, instance, cursor)
    assert not short.run_requests
    cursor = short.cursor

    refill_sensor = defs.resolve_sensor_def("inventory_refill_sensor")
    refills = evaluate(refill_sensor, instance, defs)
    by_bucket = {
        r.tags["synth/bucket"]: r.run_config["ops"]["face_inventory"]["config"]["count"]
        for r in refills.run_requests
    }
    assert by_bucket["female/adult"] == 6  # target 4 + backordered 6 - level 4
    refill(defs, instance, FEMALE_ADULT, by_bucket["female/adult"])

    restocked = tick(defs, instance, cursor)
    assert [r.tags["synth/why"] for r in restocked.run_requests] == ["restocked"]
    package(defs, instance, request_id)
    assert get_request(db, request_id).status == "ready"
    assert inventory_levels(db)["female/adult"] == 4


def test_exclusive_requests_never_share_a_face(defs, instance, db) -> None:
    refill(defs, instance, FEMALE_ADULT, 4)
    ids = [request(db, {"female/adult": 2}) for _ in range(3)]
    for request_id in ids:
        package(defs, instance, request_id)
    statuses = [get_request(db, request_id).status for request_id in ids]
    assert statuses == ["ready", "ready", "backordered"]
    with db.session() as session:
        owners = dict(session.execute(select(Face.id, Face.request_id)).all())
    assert sorted(owners.values()) == sorted(ids[:2] * 2)


def test_non_exclusive_requests_reuse_faces_exclusive_ones_do_not(defs, instance, db) -> None:
    refill(defs, instance, FEMALE_ADULT, 3)
    shared = [request(db, {"female/adult": 2}, exclusive=False) for _ in range(2)]
    for request_id in shared:
        package(defs, instance, request_id)
    assert {get_request(db, r).status for r in shared} == {"ready"}
    exclusive = request(db, {"female/adult": 2})
    package(defs, instance, exclusive)
    assert get_request(db, exclusive).status == "backordered"  # only 1 face never shared


def test_failed_packaging_releases_faces_and_a_retry_delivers(defs, instance, db) -> None:
    refill(defs, instance, FEMALE_ADULT, 3)
    store = defs.resources["object_store"].get_store()
    with db.session() as session:
        victim = session.scalars(select(Face.object_key)).first()
    saved = store.get_bytes(victim)
    store.delete(victim)
    request_id = request(db, {"female/adult": 3})
    cursor = tick(defs, instance).cursor
    run = package(defs, instance, request_id, raise_on_error=False)
    assert not run.success
    failed = get_request(db, request_id)
    assert failed.status == "failed"
    assert victim in failed.error
    assert inventory_levels(db)["female/adult"] == 3  # reservations released

    store.put_bytes(victim, saved)
    retry_request(db, request_id)
    again = tick(defs, instance, cursor)
    assert [r.run_key for r in again.run_requests] == [f"{request_id}:1"]
    package(defs, instance, request_id)
    assert get_request(db, request_id).status == "ready"


def test_expired_archives_are_deleted_and_marked(defs, instance, db) -> None:
    refill(defs, instance, FEMALE_ADULT, 1)
    request_id = request(db, {"female/adult": 1})
    package(defs, instance, request_id)
    key = get_request(db, request_id).archive_key
    store = defs.resources["object_store"].get_store()
    assert store.exists(key)
    with db.session() as session:
        session.get(DatasetRequest, request_id).expires_at = utcnow() - timedelta(seconds=1)
    result = defs.resolve_job_def("expire_datasets_job").execute_in_process(instance=instance)
    assert result.success
    assert get_request(db, request_id).status == "expired"
    assert not store.exists(key)


def test_a_stale_lease_frees_faces_of_a_killed_run(defs, instance, db, settings) -> None:
    from synth_pipelines.core.delivery.reservations import reserve_faces

    refill(defs, instance, FEMALE_ADULT, 2)
    dead = request(db, {"female/adult": 2})
    # A run reserves and then dies without releasing: only its lease remains.
    assert reserve_faces(db, dead, DatasetSpec(buckets={"female/adult": 2}), 1).complete
    assert inventory_levels(db)["female/adult"] == 0
    with db.session() as session:
        for face in session.scalars(select(Face)):
            face.reserved_until = utcnow() - timedelta(seconds=1)
        session.get(DatasetRequest, dead).lease_until = utcnow() - timedelta(seconds=1)
    assert inventory_levels(db)["female/adult"] == 2
    assert get_request(db, dead).status == "packaging"
    other = request(db, {"female/adult": 2})
    package(defs, instance, other)
    assert get_request(db, other).status == "ready"
    # The dead request reads as failed and can be retried.
    from synth_pipelines.core.delivery.status import effective_status

    assert effective_status(get_request(db, dead)) == "failed"
    assert retry_request(db, dead).status == "pending"


def test_twenty_parallel_requests_then_backorders_fill_after_a_refill(defs, instance, db):
    from concurrent.futures import ThreadPoolExecutor

    refill(defs, instance, FEMALE_ADULT, 8)
    ids = [request(db, {"female/adult": 2}) for _ in range(20)]

    def run_alone(request_id: str) -> bool:
        # One in-memory Dagster instance per thread: Dagster's SQLite event log is not made for
        # 20 threads at once. The contention under test is in the factory DB, which they share.
        with dg.DagsterInstance.ephemeral() as own:
            return package(defs, own, request_id).success

    with ThreadPoolExecutor(20) as pool:
        assert all(pool.map(run_alone, ids))
    statuses = [get_request(db, request_id).status for request_id in ids]
    assert statuses.count("ready") == 4  # 8 faces, 2 per request
    assert statuses.count("backordered") == 16
    with db.session() as session:
        owners = session.execute(select(Face.id, Face.request_id)).all()
    assert len({face for face, _ in owners}) == len(owners) == 8

    refill_sensor = defs.resolve_sensor_def("inventory_refill_sensor")
    tick_ = evaluate(refill_sensor, instance, defs)
    (refill_request,) = [r for r in tick_.run_requests if r.tags["synth/bucket"] == "female/adult"]
    count = refill_request.run_config["ops"]["face_inventory"]["config"]["count"]
    assert count == 4 + 32  # target + backordered demand
    refill(defs, instance, FEMALE_ADULT, count)
    cursor = None
    for _ in range(3):  # oldest first, as stock allows
        result = tick(defs, instance, cursor)
        cursor = result.cursor
        for run in result.run_requests:
            package(defs, instance, run.partition_key)
    assert {get_request(db, request_id).status for request_id in ids} == {"ready"}
    with db.session() as session:
        delivered = session.execute(select(Face.id).where(Face.status == "delivered")).all()
    assert len(delivered) == 40 == len(set(delivered))


def test_a_package_links_the_inventory_without_depending_on_it(settings) -> None:
    """A delivered archive is immutable: refills must not mark packages Unsynced, so the asset
    has no upstream; the inventory it is drawn from is a link in its metadata."""
    graph = build_definitions(settings).resolve_asset_graph()
    package = graph.get(dg.AssetKey("dataset_package"))
    assert package.parent_keys == set()
    assert package.metadata["drawn_from"] == dg.MetadataValue.asset(dg.AssetKey("face_inventory"))
