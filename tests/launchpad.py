"""What the launchpad shows of an asset's run config, and what a failed run says."""

import dagster as dg


def launchpad_fields(defs: dg.Definitions, asset: str) -> dict:
    """The run-config fields of `asset` by name (each with `default_value`, `description`)."""
    return defs.resolve_assets_def(asset).op.config_schema.config_type.fields


def step_failure(result: dg.ExecuteInProcessResult) -> str:
    """The first failed step's error message followed by those of its causes (a run config
    class's ValidationError is the step's error or its cause, depending on the asset)."""
    error = result.get_step_failure_events()[0].step_failure_data.error
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)
