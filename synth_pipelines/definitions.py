"""The one code location: the product lines' definitions merged, the checks over them, and the
resources they share. A new line is a package under `lines/` and one entry in LINES."""

from __future__ import annotations

import dagster as dg

from synth_pipelines.dbt_like_checks import definitions as checks
from synth_pipelines.execution import executor_for
from synth_pipelines.lines import retention
from synth_pipelines.lines.datasets import definitions as datasets
from synth_pipelines.lines.faces import definitions as faces
from synth_pipelines.lines.flux import definitions as flux
from synth_pipelines.lines.imagesets import definitions as imagesets
from synth_pipelines.lines.personas import definitions as personas
from synth_pipelines.lines.tabular import definitions as tabular
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.resources.faces import AttributeClassifierResource, FaceGeneratorResource
from synth_pipelines.resources.from_settings import (
    llm_resource,
    master_key_resource,
    object_store_resource,
)
from synth_pipelines.resources.step_outputs import STEP_OUTPUTS, StepOutputIOManager
from synth_pipelines.resources.tabular import TextEmbedderResource
from synth_pipelines.settings import Settings

# The product lines, each a package under synth_pipelines/lines with `build_defs(settings)`.
LINES = (faces, datasets, tabular, personas, flux, imagesets)
# The lines with dynamic partitions (one per request, job, persona, subject, image set): each
# says in RETENTION which keys are retired, and partition_retention_job removes their partitions.
RETAINED = (datasets, tabular, personas, flux, imagesets)


def build_resources(
    settings: Settings,
) -> dict[str, dg.ConfigurableResource | dg.ConfigurableIOManager]:
    """Resources for `settings`: embedded defaults locally, production backends by env."""
    return {
        "factory_db": FactoryDatabaseResource(url=settings.database_url),
        "object_store": object_store_resource(settings),
        STEP_OUTPUTS: StepOutputIOManager(object_store=object_store_resource(settings)),
        "face_generator": FaceGeneratorResource(
            backend=settings.faces.generator,
            size=settings.faces.size,
            checkpoint_path=settings.faces.diffusers_checkpoint,
            stylegan_checkpoint=settings.faces.stylegan_checkpoint,
            truncation=settings.faces.stylegan_truncation,
        ),
        "face_classifier": AttributeClassifierResource(
            backend=settings.faces.classifier, weights_path=settings.faces.classifier_weights
        ),
        "text_embedder": TextEmbedderResource(backend=settings.tabular.embedder),
        "llm": llm_resource(settings),
        "master_key": master_key_resource(),
    }


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Every line's definitions, the checks over them and the shared resources, configured from
    `settings` (default: the environment)."""
    settings = settings or Settings.from_env()
    lines = dg.Definitions.merge(*(line.build_defs(settings) for line in LINES))
    return dg.Definitions.merge(
        lines,
        checks.build_defs(settings, lines),
        retention.build_defs(settings, [line.RETENTION for line in RETAINED]),
        # The lines' jobs run on this executor (in process, or Celery by SYNTH_EXECUTOR); the
        # check jobs keep their own in-process executor.
        dg.Definitions(resources=build_resources(settings), executor=executor_for(settings)),
    )


defs = build_definitions()
