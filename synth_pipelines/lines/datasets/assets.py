"""Dataset packages: one partition per request, packaged from inventory in seconds."""

import dagster as dg

from synth_pipelines.core.clock import aware
from synth_pipelines.core.delivery.packaging import (
    Backordered,
    Ready,
    Waiting,
    expire_archives,
    package_request,
)
from synth_pipelines.core.errors import ConflictError
from synth_pipelines.partitions import dataset_requests
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.resources.object_store import ObjectStoreResource
from synth_pipelines.settings import Settings

DATASET_PACKAGE = "dataset_package"
INVENTORY = "face_inventory"  # what a package is drawn from (a lineage link, not a dependency)


def build_dataset_package(settings: Settings) -> dg.AssetsDefinition:
    """The dataset_package asset: reserve, package, upload, issue the link, mark ready."""

    @dg.asset(
        name=DATASET_PACKAGE,
        partitions_def=dataset_requests,
        group_name="datasets",
        owners=["team:synth-datasets"],
        tags={"domain": "datasets"},
        kinds={"python", "sql"},
        # No asset dependency on face_inventory: a delivered archive is immutable, so a refill
        # must not mark every package "Unsynced". The lineage is a link in the metadata.
        metadata={"drawn_from": dg.MetadataValue.asset(dg.AssetKey(INVENTORY))},
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
        try:
            outcome = package_request(
                factory_db.get_db(),
                object_store.get_store(),
                request_id,
                context.run_id,
                lease_seconds=settings.datasets.reservation_lease_seconds,
                ttl_seconds=settings.datasets.ttl_seconds,
            )
        except ConflictError as exc:
            # A duplicate run for a request another run already handled: nothing to do.
            context.log.warning(str(exc))
            return
        match outcome:
            case Ready():
                yield dg.MaterializeResult(metadata=_ready_metadata(outcome))
            case Waiting(reason=reason):
                context.log.warning(f"dataset {request_id} backordered: {reason}")
                yield _backordered(request_id, {"status": "backordered", "reason": reason})
            case Backordered(shortfall=shortfall):
                context.log.warning(
                    f"dataset {request_id} backordered: short {shortfall}; it will be packaged "
                    "when the refill sensor has topped the inventory up"
                )
                yield _backordered(
                    request_id,
                    {"status": "backordered", "shortfall": dg.MetadataValue.json(shortfall)},
                )

    return dataset_package


def _ready_metadata(ready: Ready) -> dict:
    archive, request = ready.archive, ready.request
    return {
        "faces": ready.faces,
        "faces_per_bucket": dg.MetadataValue.json(archive.faces_per_bucket),
        "format": ready.spec.format,
        "image_size": ready.spec.image_size,
        "exclusive": ready.spec.exclusive,
        "bytes": archive.bytes,
        "seconds": round(ready.seconds, 3),
        "mb_per_s": round(archive.bytes / 1e6 / max(archive.seconds, 1e-9), 1),
        "queue_to_ready_seconds": round(ready.queue_to_ready_seconds, 3),
        "archive": archive.key,
        "drawn_from": dg.MetadataValue.asset(dg.AssetKey(INVENTORY)),
        "expires_at": aware(request.expires_at).isoformat(),
    }


def _backordered(request_id: str, metadata: dict) -> dg.AssetObservation:
    return dg.AssetObservation(asset_key=DATASET_PACKAGE, partition=request_id, metadata=metadata)


@dg.op(description="Delete archives whose download link expired and mark those requests.")
def expire_datasets(
    context: dg.OpExecutionContext,
    factory_db: FactoryDatabaseResource,
    object_store: ObjectStoreResource,
) -> int:
    expired = expire_archives(factory_db.get_db(), object_store.get_store())
    context.log.info(f"expired {len(expired)} dataset(s)")
    context.add_output_metadata({"expired": len(expired)})
    return len(expired)


@dg.job(description="Delete expired dataset archives from the store.")
def expire_datasets_job() -> None:
    expire_datasets()
