"""The face inventory: one partition per gender x age-group bucket, refilled ahead of demand."""

import base64
import io

import dagster as dg
from pydantic import Field

from synth_pipelines.core.errors import SynthError
from synth_pipelines.core.faces.preview import contact_sheet
from synth_pipelines.core.faces.refill import RefillPolicy, RefillReport, refill_bucket
from synth_pipelines.core.storage.object_store import ObjectStore
from synth_pipelines.execution import GPU_STEP_TAGS
from synth_pipelines.lines.run_config import env_default
from synth_pipelines.partitions import bucket_for_partition, face_buckets
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.resources.faces import AttributeClassifierResource, FaceGeneratorResource
from synth_pipelines.resources.object_store import ObjectStoreResource
from synth_pipelines.settings import FaceSettings, Settings


def face_inventory_config(faces: FaceSettings) -> type[dg.Config]:
    """The run config of face_inventory, its defaults those of `faces` (the environment)."""

    class FaceInventoryConfig(dg.Config):
        """Run config of one face_inventory partition. Leave `count` empty to top up to target."""

        count: int | None = Field(
            default=None,
            description=(
                f"Faces to add (0..{faces.max_batch}, SYNTH_MAX_BATCH); empty = the deficit to "
                "the bucket's target."
            ),
        )
        seed: int | None = Field(
            default=None, description="Batch seed; empty = derived from the run (stable on retry)."
        )
        image_size: int = env_default(
            faces, "size", "Width and height of this run's faces, in pixels."
        )

    return FaceInventoryConfig


def build_face_inventory(settings: Settings, pool: str | None = None) -> dg.AssetsDefinition:
    """The face_inventory asset for `settings` (targets, label policy, batch limit), with run
    config for count, seed and image size.

    `pool="gpu"` when the generator runs on a GPU, so the instance's gpu pool serialises it.
    """
    FaceInventoryConfig = face_inventory_config(settings.faces)

    @dg.asset(
        name="face_inventory",
        partitions_def=face_buckets,
        group_name="faces",
        owners=["team:synth-faces"],
        tags={"domain": "faces"},
        kinds={"python", "sql"},
        pool=pool,
        op_tags=GPU_STEP_TAGS if pool == "gpu" else None,  # the gpu queue on Celery
        description=(
            "Labelled synthetic faces per gender x age group: generated, classified, "
            "deduplicated (exact and perceptual hash), stored as PNGs with a row each in the "
            "factory database."
        ),
        metadata={"targets": dg.MetadataValue.json(settings.faces.targets)},
    )
    def face_inventory(
        context: dg.AssetExecutionContext,
        config: FaceInventoryConfig,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
        face_generator: FaceGeneratorResource,
        face_classifier: AttributeClassifierResource,
    ) -> dg.MaterializeResult:
        bucket = bucket_for_partition(context.partition_key)
        if config.count is not None and not 0 <= config.count <= settings.faces.max_batch:
            raise dg.Failure(
                f"count {config.count} for {bucket} is out of range: accepted "
                f"0..{settings.faces.max_batch} (SYNTH_MAX_BATCH); leave it empty to top up to "
                "target"
            )
        # The root run id is shared by a run and its re-executions: a retry resumes the batch.
        batch_id = f"{context.run.root_run_id or context.run_id}:{bucket}"
        try:
            db = factory_db.get_db()
            store = object_store.get_store()
            store.check()  # fail before any work when the bucket or directory is unusable
        except SynthError as exc:
            raise dg.Failure(f"refill of {bucket} cannot start: {exc}") from exc

        def log_progress(report: RefillReport) -> None:
            context.log.info(
                f"{bucket}: {report.accepted}/{report.requested} faces "
                f"(generated {report.generated}, rejected {sum(report.rejected.values())})"
            )

        try:
            report = refill_bucket(
                bucket=bucket,
                count=config.count,
                target=settings.faces.targets[bucket.key],
                batch_id=batch_id,
                seed=config.seed,
                generator=face_generator.get_generator(size=config.image_size),
                classifier=face_classifier.get_classifier(),
                store=store,
                db=db,
                policy=RefillPolicy(
                    label_source=settings.faces.effective_label_source,
                    phash_distance=settings.faces.phash_distance,
                    # A GPU generator stays in this process; CPU generators fan out.
                    workers=1 if face_generator.uses_gpu else settings.faces.refill_workers,
                ),
                progress=log_progress,
            )
        except SynthError as exc:
            raise dg.Failure(f"refill of {bucket} failed: {exc}") from exc
        if report.shortfall:
            context.log.warning(
                f"{bucket}: only {report.accepted} of {report.requested} faces accepted after "
                f"{report.generated} attempts ({dict(report.rejected)}); the refill sensor will "
                "request the rest"
            )
        metadata = _metadata(report, store, settings, bucket.key)
        # The UI spells a multi-partition key by dimension, "adult|female"; everything else (API,
        # CLI, settings, archives) says "female/adult". Both, side by side:
        metadata = {"bucket": bucket.key, "partition_key": str(context.partition_key), **metadata}
        return dg.MaterializeResult(metadata={**metadata, "image_size": config.image_size})

    return face_inventory


def _metadata(report: RefillReport, store: ObjectStore, settings: Settings, bucket: str) -> dict:
    rejected_rows = "\n".join(
        f"| {reason} | {count} |" for reason, count in sorted(report.rejected.items())
    )
    metadata: dict[str, dg.MetadataValue | int | float | str] = {
        "requested": report.requested,
        "added": report.added,
        "already_stored": report.already_stored,
        "generated": report.generated,
        "rejected": sum(report.rejected.values()),
        "rejected_by_reason": dg.MetadataValue.md(
            "| reason | faces |\n|---|---|\n" + (rejected_rows or "| (none) | 0 |")
        ),
        "acceptance_rate": round(report.acceptance_rate, 4),
        "label_source": settings.faces.effective_label_source,
        "classifier_detection_rate": round(report.detection_rate, 4),
        "classifier_agreement": round(report.classifier_agreement, 4),
        "level_before": report.level_before,
        "level_after": report.level_after,
        "target": settings.faces.targets[bucket],
        "seconds": round(report.seconds, 3),
        "seconds_per_face": round(report.seconds_per_face, 4),
        "timings": dg.MetadataValue.json({k: round(v, 3) for k, v in report.timings.items()}),
        "batch_id": report.batch_id,
    }
    if report.previews:
        run_id = report.batch_id.split(":")[0]
        preview_key = f"previews/face_inventory/{bucket}/{run_id}.png"
        sheet = contact_sheet(report.previews, columns=10, thumb=96)
        buffer = io.BytesIO()
        sheet.save(buffer, format="PNG")
        store.put_bytes(preview_key, buffer.getvalue(), content_type="image/png")
        # A small JPEG inline, so the UI shows the faces without opening the store.
        inline = io.BytesIO()
        sheet.reduce(2).save(inline, format="JPEG", quality=80)
        encoded = base64.b64encode(inline.getvalue()).decode()
        metadata["preview_image"] = dg.MetadataValue.md(
            f"![faces added to {bucket}](data:image/jpeg;base64,{encoded})"
        )
        url = store.url(preview_key, expires_in=7 * 24 * 3600)
        metadata["preview"] = (
            dg.MetadataValue.path(url.removeprefix("file://"))
            if url.startswith("file://")
            else dg.MetadataValue.url(url)
        )
    return metadata
