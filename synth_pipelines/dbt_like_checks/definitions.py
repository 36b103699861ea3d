"""The checks line: YAML column tests and image checks compiled to asset checks over the other
lines' assets, the validation job and schedule that run them on the data as it is, and the
sensor and job that turn a failed error-severity check into a delivery hold."""

from __future__ import annotations

import dagster as dg

from synth_pipelines.dbt_like_checks.compiler import build_yaml_checks, load_yaml_specs
from synth_pipelines.dbt_like_checks.holds import apply_check_holds_job
from synth_pipelines.dbt_like_checks.image_checks import build_image_checks
from synth_pipelines.dbt_like_checks.sensors import build_check_failure_sensor
from synth_pipelines.dbt_like_checks.validation import (
    build_validation_job,
    build_validation_schedule,
    in_step_checks,
)
from synth_pipelines.settings import Settings


def build_defs(settings: Settings, lines: dg.Definitions) -> dg.Definitions:
    """The checks over `lines` (the product lines' merged definitions)."""
    asset_checks = [
        *build_yaml_checks(load_yaml_specs(settings), settings),
        *build_image_checks(settings),
    ]
    in_step = in_step_checks(lines)
    standalone = [key for checks in asset_checks for key in checks.check_keys]
    return dg.Definitions(
        asset_checks=asset_checks,
        jobs=[build_validation_job(in_step), apply_check_holds_job],
        sensors=[build_check_failure_sensor(settings, [*in_step, *standalone])],
        schedules=[build_validation_schedule(settings)],
    )
