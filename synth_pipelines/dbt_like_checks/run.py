"""Run checks on demand (`synth checks run`): a checks-only run of the selected checks on the
local Dagster instance, recorded like any scheduled validation run."""

from fnmatch import fnmatch

import dagster as dg

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.dbt_like_checks.validation import in_step_checks

CLI_JOB = "synth_checks_cli"


def runnable_checks(defs: dg.Definitions) -> list[dg.AssetCheckKey]:
    """Every check that runs without materializing its asset, sorted by asset then name."""
    keys = defs.get_repository_def().asset_graph.asset_check_keys
    in_step = set(in_step_checks(defs))
    return sorted((k for k in keys if k not in in_step), key=lambda k: (str(k.asset_key), k.name))


def _spellings(key: dg.AssetCheckKey) -> tuple[str, ...]:
    """What `--select` matches a check by: its name (`near_duplicates`), its asset, the two as
    Dagster spells a check key (`face_inventory:near_duplicates`), and the name it had before
    issue 21 (`face_inventory__near_duplicates`), so existing CI gates keep selecting it."""
    asset = key.asset_key.to_user_string()
    return key.name, asset, key.to_user_string(), f"{asset}__{key.name}"


def select_checks(defs: dg.Definitions, patterns: list[str]) -> list[dg.AssetCheckKey]:
    """Checks whose name, asset or `asset:name` matches any glob in `patterns` (all when none
    is given); a pattern that matches nothing is an error naming what exists."""
    available = runnable_checks(defs)
    if not patterns:
        return available
    chosen = []
    for pattern in patterns:
        hits = [k for k in available if any(fnmatch(s, pattern) for s in _spellings(k))]
        if not hits:
            assets = sorted({k.asset_key.to_user_string() for k in available})
            raise InvalidInputError(
                f"--select {pattern!r} matches no check; give a check name or glob "
                f"(e.g. 'near_duplicates', '*__not_null'), 'asset:name' "
                f"(e.g. 'face_inventory:*') or an asset: {', '.join(assets)}"
            )
        chosen.extend(k for k in hits if k not in chosen)
    return chosen


def run_checks(
    defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[dg.AssetCheckKey]
) -> dg.ExecuteInProcessResult:
    """One checks-only run of `keys` in this process."""
    job = dg.define_asset_job(
        CLI_JOB,
        selection=dg.AssetSelection.checks(*keys),
        executor_def=dg.in_process_executor,
        description="Checks run from `synth checks run`.",
    )
    merged = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    return merged.resolve_job_def(CLI_JOB).execute_in_process(
        instance=instance,
        tags={"synth/trigger": "cli"},
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        raise_on_error=False,
    )
