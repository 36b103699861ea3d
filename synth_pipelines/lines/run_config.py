"""Run-config fields that default to the environment: the per-run knobs the launchpad shows with
the value this deployment runs with, bounded as the setting behind them is."""

from typing import Any

from pydantic import Field

from synth_pipelines.settings import declaration


def env_default(group: object, name: str, description: str) -> Any:
    """A `dg.Config` field for setting `name` of the settings `group` (e.g. `settings.flux`,
    "rank"): its default the group's value, its bounds (ge/le) the setting's declared range, and
    the variable it comes from named in its description."""
    spec = declaration(type(group), name)
    value = getattr(group, name)
    low, high = spec.range or (None, None)
    return Field(
        default=value, ge=low, le=high, description=f"{description} Default: {spec.env}={value}."
    )
