"""The one Definitions object: every line's assets, checks, sensors, schedules and resources."""

from __future__ import annotations

import dagster as dg

from synth_pipelines.assets.datasets import build_dataset_package, expire_datasets_job
from synth_pipelines.assets.faces import build_face_inventory
from synth_pipelines.assets.flux import build_flux_assets
from synth_pipelines.assets.personas import build_persona_assets
from synth_pipelines.assets.tabular import build_tabular_dataset
from synth_pipelines.dbt_like_checks.compiler import build_yaml_checks, load_yaml_specs
from synth_pipelines.dbt_like_checks.image_checks import build_image_checks
from synth_pipelines.dbt_like_checks.validation import (
    IN_STEP_CHECKS,
    build_validation_job,
    build_validation_schedule,
)
from synth_pipelines.partitions import (
    dataset_requests,
    face_buckets,
    personas,
    subjects,
    tabular_jobs,
)
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.resources.faces import AttributeClassifierResource, FaceGeneratorResource
from synth_pipelines.resources.from_settings import (
    llm_resource,
    master_key_resource,
    object_store_resource,
)
from synth_pipelines.resources.tabular import TextEmbedderResource
from synth_pipelines.sensors.checks import build_check_failure_sensor
from synth_pipelines.sensors.datasets import (
    PACKAGE_JOB,
    build_dataset_request_sensor,
    build_expire_datasets_schedule,
)
from synth_pipelines.sensors.flux import FLUX_JOB, build_subject_sensor
from synth_pipelines.sensors.inventory import (
    REFILL_JOB,
    build_inventory_refill_sensor,
    build_inventory_top_up_schedule,
)
from synth_pipelines.sensors.personas import PERSONA_JOB, build_persona_source_sensor
from synth_pipelines.sensors.tabular import TABULAR_JOB, build_tabular_job_sensor
from synth_pipelines.settings import Settings


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Resources for `settings`: embedded defaults locally, production backends by env."""
    return {
        "factory_db": FactoryDatabaseResource(url=settings.database_url),
        "object_store": object_store_resource(settings),
        "face_generator": FaceGeneratorResource(
            backend=settings.face_generator,
            size=settings.face_size,
            checkpoint_path=settings.diffusers_checkpoint,
        ),
        "face_classifier": AttributeClassifierResource(
            backend=settings.classifier, weights_path=settings.classifier_weights
        ),
        "text_embedder": TextEmbedderResource(backend=settings.tabular_embedder),
        "llm": llm_resource(settings),
        "master_key": master_key_resource(),
    }


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Every asset, sensor, schedule and resource, configured from `settings` (default: env)."""
    settings = settings or Settings.from_env()
    face_inventory = build_face_inventory(
        settings, pool="gpu" if settings.face_generator == "diffusers" else None
    )
    refill_job = dg.define_asset_job(
        REFILL_JOB,
        # Checks on the whole inventory run in validation_job, not in every bucket's refill.
        selection=dg.AssetSelection.assets(face_inventory).without_checks(),
        partitions_def=face_buckets,
        # One step: running it in the run's own process saves a second process and its imports.
        executor_def=dg.in_process_executor,
        description="Refill one face bucket (one partition of face_inventory).",
    )
    dataset_package = build_dataset_package(settings)
    package_job = dg.define_asset_job(
        PACKAGE_JOB,
        selection=dg.AssetSelection.assets(dataset_package).without_checks(),
        partitions_def=dataset_requests,
        executor_def=dg.in_process_executor,
        description="Package one dataset request (one partition of dataset_package).",
    )
    tabular_dataset = build_tabular_dataset(settings)
    tabular_job = dg.define_asset_job(
        TABULAR_JOB,
        selection=dg.AssetSelection.assets(tabular_dataset),
        partitions_def=tabular_jobs,
        # Chunks already run in parallel processes inside the step.
        executor_def=dg.in_process_executor,
        description="Generate one confirmed tabular job (one partition of tabular_dataset).",
    )
    persona_assets = build_persona_assets(settings)
    persona_job = dg.define_asset_job(
        PERSONA_JOB,
        selection=dg.AssetSelection.assets(*persona_assets),
        partitions_def=personas,
        executor_def=dg.in_process_executor,
        description="Corpus → dataset → adapter for one persona (one partition of personas).",
    )
    flux_assets = build_flux_assets(settings)
    flux_job = dg.define_asset_job(
        FLUX_JOB,
        selection=dg.AssetSelection.assets(*flux_assets),
        partitions_def=subjects,
        executor_def=dg.in_process_executor,
        description="Photos → LoRA → samples for one subject (one partition of subjects).",
    )
    asset_checks = [
        *build_yaml_checks(load_yaml_specs(settings), settings),
        *build_image_checks(settings),
    ]
    check_keys = [*IN_STEP_CHECKS, *(key for c in asset_checks for key in c.check_keys)]
    validation_job = build_validation_job()
    return dg.Definitions(
        assets=[face_inventory, dataset_package, tabular_dataset, *persona_assets, *flux_assets],
        asset_checks=asset_checks,
        jobs=[
            refill_job,
            package_job,
            expire_datasets_job,
            tabular_job,
            validation_job,
            persona_job,
            flux_job,
        ],
        sensors=[
            build_inventory_refill_sensor(settings, refill_job),
            build_dataset_request_sensor(settings, package_job),
            build_tabular_job_sensor(settings, tabular_job),
            build_check_failure_sensor(settings, check_keys),
            build_persona_source_sensor(settings, persona_job),
            build_subject_sensor(settings, flux_job),
        ],
        schedules=[
            build_inventory_top_up_schedule(settings, refill_job),
            build_expire_datasets_schedule(expire_datasets_job),
            build_validation_schedule(settings, validation_job),
        ],
        resources=build_resources(settings),
    )


defs = build_definitions()
