"""Image sets: image_profile → synthetic_image_set → image_validation → image_export, one
partition per registered set.

Thin assets over `core.imagesets.pipeline`: each runs its stage for the partition's set, which
records progress and errors on the set (GET /imagesets/{id}). The metadata holds counts and
speeds, the profile's histograms and outlier contact sheet as images, the report's path, and
each check's metrics; `privacy` (exact or near copies of real images) is a blocking check, so
a set that copies its source is never exported.
"""

import dataclasses
from pathlib import Path

import dagster as dg

from synth_pipelines.core.checks.names import (
    IMAGE_VALIDATION,
    SET_FIDELITY,
    SET_PRIVACY,
    SET_QUALITY,
)
from synth_pipelines.core.markdown_images import png_markdown
from synth_pipelines.dbt_like_checks.results import check_result
from synth_pipelines.execution import GPU_STEP_TAGS
from synth_pipelines.partitions import image_sets
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.resources.object_store import ObjectStoreResource
from synth_pipelines.settings import Settings

GROUP = "imagesets"
COMMON = {
    "partitions_def": image_sets,
    "group_name": GROUP,
    "owners": ["team:synth-images"],
    "tags": {"domain": "imagesets"},
}
MAX_INLINE_PNG = 400_000  # bytes: larger plots are linked, not inlined in the metadata


def _png(path: Path, title: str) -> dg.MetadataValue:
    data = path.read_bytes()
    if len(data) > MAX_INLINE_PNG:
        return dg.MetadataValue.path(str(path))
    return dg.MetadataValue.md(png_markdown(data, title))


def _files_metadata(files: dict[str, Path]) -> dict[str, dg.MetadataValue]:
    metadata: dict[str, dg.MetadataValue] = {}
    for name, path in files.items():
        if path.suffix == ".png":
            metadata[name] = _png(path, name)
        else:
            metadata[name] = dg.MetadataValue.path(str(path))
    return metadata


def _progress(context: dg.AssetExecutionContext, noun: str, every: int = 500):
    def report(done: int, total: int | None = None) -> None:
        if done % every == 0 or done == total:
            context.log.info(f"{done}{f'/{total}' if total else ''} {noun}")

    return report


def build_imageset_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    from synth_pipelines.core.imagesets.pipeline import ImageOptions

    options = ImageOptions.from_settings(settings.images)

    def _set(context, factory_db: FactoryDatabaseResource, object_store: ObjectStoreResource):
        from synth_pipelines.core.imagesets.pipeline import RegisteredSet

        return RegisteredSet(
            factory_db.get_db(), object_store.get_store(), settings.home, context.partition_key,
            options,
        )  # fmt: skip

    @dg.asset(
        **COMMON,
        kinds={"python", "parquet"},
        description=(
            "The real image set's profile, streamed from its source (folder, zip, S3 prefix, "
            "Parquet of image bytes, imagefolder): per image size, mode, format, JPEG quality, "
            "brightness, contrast, colourfulness, sharpness, noise, dominant colours, EXIF/GPS, "
            "faces (dlib) and text (tesseract, when installed); for the set distributions, "
            "near-duplicate clusters and embeddings; Parquet, JSON and an HTML report."
        ),
    )
    def image_profile(
        context: dg.AssetExecutionContext,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
    ) -> dg.MaterializeResult:
        result = _set(context, factory_db, object_store).profile(
            _progress(context, "images profiled")
        )
        return dg.MaterializeResult(metadata={**result.summary, **_files_metadata(result.files)})

    @dg.asset(
        **COMMON,
        deps=[image_profile],
        kinds={"pytorch", "parquet"},
        pool="gpu",
        op_tags=GPU_STEP_TAGS,  # its Celery task goes to the gpu queue
        description=(
            "A synthetic image set generated to the real set's profile (its size mix, "
            "brightness, contrast and colour distributions) by the set's backend: simulation "
            "(faces, or procedural scenes), diffusion (a local diffusers pipeline) or gan (a "
            "local StyleGAN2 checkpoint, ψ and seed per image); deterministic by seed."
        ),
    )
    def synthetic_image_set(
        context: dg.AssetExecutionContext,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
    ) -> dg.MaterializeResult:
        result = _set(context, factory_db, object_store).generate(
            _progress(context, "images generated", every=100)
        )
        return dg.MaterializeResult(metadata=result.summary)

    check_specs = [
        dg.AssetCheckSpec(
            SET_QUALITY,
            asset=IMAGE_VALIDATION,
            description="every synthetic image decodes, is sharp, well exposed, not clipped, "
            "and not a duplicate of another",
        ),
        dg.AssetCheckSpec(
            SET_FIDELITY,
            asset=IMAGE_VALIDATION,
            description="synthetic vs real: per-feature Wasserstein and KS, precision, recall, "
            "density and coverage, KID (FID with local Inception weights)",
        ),
        dg.AssetCheckSpec(
            SET_PRIVACY,
            asset=IMAGE_VALIDATION,
            blocking=True,
            description="no synthetic image is an exact or near copy of a real one (phash, "
            "embedding); distance to closest record against a real holdout",
        ),
    ]

    @dg.asset(
        **COMMON,
        name=IMAGE_VALIDATION,
        deps=[synthetic_image_set],
        kinds={"python"},
        check_specs=check_specs,
        description=(
            "The synthetic set profiled like the real one and judged against it: quality, "
            "fidelity and privacy reports (report.json); privacy blocks the export."
        ),
    )
    def image_validation(
        context: dg.AssetExecutionContext,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
    ):
        from synth_pipelines.core.imagesets.pipeline import RECORDS, thumbnails_markdown

        registered = _set(context, factory_db, object_store)
        result = registered.validate(_progress(context, "images validated"))
        yield dg.MaterializeResult(metadata={**result.summary, **_files_metadata(result.files)})
        records = registered.folder / "synthetic" / RECORDS
        for outcome in result.outcomes:
            failing = outcome.metadata.get("failing") or []
            if failing and records.is_file():
                samples = thumbnails_markdown(records, failing)
                outcome = dataclasses.replace(
                    outcome,
                    metadata={**outcome.metadata, "failing_samples": dg.MetadataValue.md(samples)},
                )
            yield check_result(IMAGE_VALIDATION, outcome)

    @dg.asset(
        **COMMON,
        deps=[image_validation],
        kinds={"parquet", "s3"},
        description=(
            "The synthetic set in each requested format — JSONL, Parquet (image bytes), "
            "WebDataset shards, Hugging Face imagefolder, COCO — in the object store under "
            "imagesets/<id>/exports/<format>/, EXIF and GPS stripped, published complete."
        ),
    )
    def image_export(
        context: dg.AssetExecutionContext,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
    ) -> dg.MaterializeResult:
        result = _set(context, factory_db, object_store).export(
            _progress(context, "images exported")
        )
        return dg.MaterializeResult(
            metadata={
                "exports": dg.MetadataValue.json(result.summary["exports"]),
                "bytes": result.summary["bytes"],
                "mb_per_s": result.summary["mb_per_s"],
            }
        )

    return [image_profile, synthetic_image_set, image_validation, image_export]
