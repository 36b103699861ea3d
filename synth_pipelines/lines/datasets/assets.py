"""Dataset packages: one partition per request, packaged from inventory in seconds."""

import time

import dagster as dg

from synth_pipelines.core.checks.holds import pause_reason, paused_buckets
from synth_pipelines.core.delivery.archive import ArchiveFace, write_dataset_archive
from synth_pipelines.core.delivery.requests import (
    DatasetSpec,
    aware,
    expired_requests,
    mark_backordered,
    mark_expired,
    mark_failed,
    mark_ready,
    mark_waiting,
    release_reservations,
    reserve_faces,
    start_packaging,
    utcnow,
)
from synth_pipelines.core.errors import ConflictError
from synth_pipelines.core.storage.models import Face
from synth_pipelines.partitions import dataset_requests
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.resources.object_store import ObjectStoreResource
from synth_pipelines.settings import Settings

DATASET_PACKAGE = "dataset_package"
ARCHIVE_SUFFIX = {"zip": "zip", "webdataset": "tar"}


def archive_key_for(request_id: str, fmt: str) -> str:
    return f"datasets/{request_id}/synth-faces-{request_id}.{ARCHIVE_SUFFIX[fmt]}"


def _archive_face(face: Face) -> ArchiveFace:
    return ArchiveFace(
        id=face.id,
        gender=face.gender,
        age_group=face.age_group,
        object_key=face.object_key,
        sha256=face.sha256,
        width=face.width,
        height=face.height,
        generator=face.generator,
        seed=face.seed,
        classifier=face.classifier,
        face_detected=face.face_detected,
        predicted_gender=face.predicted_gender,
        predicted_age=face.predicted_age,
        gender_confidence=face.gender_confidence,
        age_confidence=face.age_confidence,
        attributes=face.attributes,
    )


def build_dataset_package(settings: Settings) -> dg.AssetsDefinition:
    """The dataset_package asset: reserve, package, upload, issue the link, mark ready."""

    @dg.asset(
        name=DATASET_PACKAGE,
        partitions_def=dataset_requests,
        group_name="datasets",
        kinds={"python", "sql"},
        # Any request may draw on every bucket of the inventory.
        deps=[dg.AssetDep("face_inventory", partition_mapping=dg.AllPartitionMapping())],
        output_required=False,
        description=(
            "One requested face dataset: faces reserved from the inventory in one transaction, "
            "streamed into a zip or WebDataset archive with metadata.jsonl, labels.csv, a "
            "sha256 manifest and a dataset card, behind an expiring download link."
        ),
    )
    def dataset_package(
        context: dg.AssetExecutionContext,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
    ):
        request_id = context.partition_key
        db, store = factory_db.get_db(), object_store.get_store()
        try:
            request = start_packaging(db, request_id, context.run_id)
        except ConflictError as exc:
            # A duplicate run for a request another run already handled: nothing to do.
            context.log.warning(str(exc))
            return
        spec = DatasetSpec.parse(request.spec, max_total=max(request.total, 1))
        held = pause_reason(paused_buckets(db), list(spec.buckets))
        if held:
            mark_waiting(db, request_id, held)
            context.log.warning(f"dataset {request_id} backordered: {held}")
            context.log_event(
                dg.AssetObservation(
                    asset_key="dataset_package",
                    partition=request_id,
                    metadata={"status": "backordered", "reason": held},
                )
            )
            return
        started = time.perf_counter()
        reservation = reserve_faces(
            db, request_id, spec, settings.reservation_lease_seconds, context.run_id
        )
        if not reservation.complete:
            mark_backordered(db, request_id, reservation.shortfall)
            context.log.warning(
                f"dataset {request_id} backordered: short {reservation.shortfall}; it will be "
                "packaged when the refill sensor has topped the inventory up"
            )
            context.log_event(
                dg.AssetObservation(
                    asset_key="dataset_package",
                    partition=request_id,
                    metadata={"status": "backordered", "shortfall": reservation.shortfall},
                )
            )
            return
        try:
            faces = [_archive_face(face) for faces in reservation.faces.values() for face in faces]
            result = write_dataset_archive(
                store,
                archive_key_for(request_id, spec.format),
                faces,
                request_id=request_id,
                spec=spec.as_dict(),
                fmt=spec.format,
                image_size=spec.image_size,
            )
            _, request = mark_ready(
                db,
                request_id,
                archive_key=result.key,
                archive_bytes=result.bytes,
                delivered=result.faces_per_bucket,
                ttl_seconds=settings.dataset_ttl_seconds,
            )
        except BaseException as exc:  # also a terminated run: give the faces back first
            released = release_reservations(db, request_id)
            mark_failed(db, request_id, f"{exc.__class__.__name__}: {exc}")
            context.log.error(f"packaging {request_id} failed; released {released} faces")
            raise
        seconds = time.perf_counter() - started
        queue_to_ready = (aware(request.completed_at) - aware(request.created_at)).total_seconds()
        yield dg.MaterializeResult(
            metadata={
                "faces": len(faces),
                "faces_per_bucket": dg.MetadataValue.json(result.faces_per_bucket),
                "format": spec.format,
                "image_size": spec.image_size,
                "exclusive": spec.exclusive,
                "bytes": result.bytes,
                "seconds": round(seconds, 3),
                "mb_per_s": round(result.bytes / 1e6 / max(result.seconds, 1e-9), 1),
                "queue_to_ready_seconds": round(queue_to_ready, 3),
                "archive": result.key,
                "expires_at": aware(request.expires_at).isoformat(),
            }
        )

    return dataset_package


@dg.op(description="Delete archives whose download link expired and mark those requests.")
def expire_datasets(
    context: dg.OpExecutionContext,
    factory_db: FactoryDatabaseResource,
    object_store: ObjectStoreResource,
) -> int:
    db, store = factory_db.get_db(), object_store.get_store()
    expired = expired_requests(db, utcnow())
    for request in expired:
        if request.archive_key:
            store.delete(request.archive_key)
        mark_expired(db, request.id)
    context.log.info(f"expired {len(expired)} dataset(s)")
    context.add_output_metadata({"expired": len(expired)})
    return len(expired)


@dg.job(description="Delete expired dataset archives from the store.")
def expire_datasets_job() -> None:
    expire_datasets()
