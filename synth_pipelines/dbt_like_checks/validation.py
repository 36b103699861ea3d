"""The validation job (every check, no materialization) and the schedule that runs it, so a
check fails on data that changed outside a run."""

from __future__ import annotations

import dagster as dg

from synth_pipelines.settings import Settings

VALIDATION_JOB = "validation_job"
VALIDATION_SCHEDULE = "validation_schedule"


def in_step_checks(defs: dg.Definitions) -> list[dg.AssetCheckKey]:
    """Checks computed inside their asset's step (a tabular job's schema checks on the table it
    just generated; a persona adapter's or a Flux LoRA's on the model it just trained): declared
    on the asset itself, they run with a materialization, never on their own."""
    return [
        key
        for asset in defs.assets or []
        if isinstance(asset, dg.AssetsDefinition)
        for key in asset.check_keys
    ]


def build_validation_job(in_step: list[dg.AssetCheckKey]):
    """Every asset check that can run without materializing its asset (all but `in_step`)."""
    return dg.define_asset_job(
        VALIDATION_JOB,
        selection=dg.AssetSelection.all_asset_checks() - dg.AssetSelection.checks(*in_step),
        # One process: Great Expectations and the face models load once for every check.
        executor_def=dg.in_process_executor,
        description=(
            "Runs every data, image-quality, privacy and delivery check on the current data, "
            "without materializing anything."
        ),
    )


def build_validation_schedule(settings: Settings) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=VALIDATION_SCHEDULE,
        cron_schedule=settings.checks.validation_cron,
        job_name=VALIDATION_JOB,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            f"Runs validation_job ({settings.checks.validation_cron}, SYNTH_VALIDATION_CRON): "
            "every check on the data as it is now."
        ),
    )
