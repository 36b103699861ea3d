"""The validation job (every check, no materialization) and the schedule that runs it, so a
check fails on data that changed outside a run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from synth_pipelines.assets.flux import SAMPLES as FLUX_SAMPLES
from synth_pipelines.assets.personas import ADAPTER, ADAPTER_CHECKS
from synth_pipelines.assets.tabular import CHECK_SPECS as TABULAR_SCHEMA_CHECKS
from synth_pipelines.settings import Settings

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

VALIDATION_JOB = "validation_job"
# Computed inside their asset's step (a tabular job's schema checks, on the table it just
# generated; a persona adapter's or a Flux LoRA's, on the model it just trained): they run with a
# materialization, never on their own.
TABULAR_KEYS = {spec.key.asset_key for spec in TABULAR_SCHEMA_CHECKS}
IN_STEP_CHECKS: list[dg.AssetCheckKey] = [
    *(spec.key for spec in TABULAR_SCHEMA_CHECKS),
    *(dg.AssetCheckKey(dg.AssetKey(ADAPTER), name) for name in ADAPTER_CHECKS),
    *(
        dg.AssetCheckKey(dg.AssetKey(FLUX_SAMPLES), name)
        for name in ("identity", "prompt_relevance")
    ),
]


def build_validation_job() -> UnresolvedAssetJobDefinition:
    """Every asset check that can run without materializing its asset."""
    return dg.define_asset_job(
        VALIDATION_JOB,
        selection=dg.AssetSelection.all_asset_checks()
        - dg.AssetSelection.checks(*(k for k in IN_STEP_CHECKS if k.asset_key in TABULAR_KEYS))
        # Every check of these assets is computed in their step (some exist only by setting).
        - dg.AssetSelection.checks_for_assets(ADAPTER, FLUX_SAMPLES),
        # One process: Great Expectations and the face models load once for every check.
        executor_def=dg.in_process_executor,
        description=(
            "Runs every data, image-quality, privacy and delivery check on the current data, "
            "without materializing anything."
        ),
    )


def build_validation_schedule(
    settings: Settings, job: UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="validation_schedule",
        cron_schedule=settings.validation_cron,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            f"Runs validation_job ({settings.validation_cron}, SYNTH_VALIDATION_CRON): every "
            "check on the data as it is now."
        ),
    )
