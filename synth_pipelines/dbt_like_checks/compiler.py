"""YAML tests → Dagster asset checks: one check per test, one multi-asset check per asset so a
table is read once however many of its checks run, blocking where severity is error."""

from pathlib import Path

import dagster as dg
import pandas as pd

from synth_pipelines.core.checks.expectations import run_tests
from synth_pipelines.core.checks.measurement import yaml_outcome
from synth_pipelines.core.checks.spec import TestSpec, load_specs, spec_files
from synth_pipelines.core.checks.tables import TABLES, load_db_table, load_tabular_output
from synth_pipelines.core.tabular.jobs import get_job, jobs_in
from synth_pipelines.dbt_like_checks.results import check_result
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.resources.object_store import ObjectStoreResource
from synth_pipelines.settings import Settings

PACKAGED = Path(__file__).parent


def check_folders(settings: Settings) -> list[Path]:
    """The shipped YAML folder, then SYNTH_CHECKS_DIR when set."""
    return [PACKAGED, *([settings.checks.yaml_dir] if settings.checks.yaml_dir else [])]


def load_yaml_specs(settings: Settings) -> list[TestSpec]:
    """Every YAML test the definitions carry; a bad file fails here, naming file and line."""
    paths = [path for folder in check_folders(settings) for path in spec_files(folder)]
    return load_specs(paths, TABLES)


def check_spec(spec: TestSpec) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        spec.name,
        asset=spec.asset,
        blocking=spec.blocking,
        description=f"{spec.description} [{spec.severity}; {spec.location}]",
        metadata={"severity": spec.severity, "source": spec.location, "test": spec.test},
    )


def _tabular_tables(
    context: dg.AssetCheckExecutionContext,
    factory_db,
    object_store,
    newest: int,
    columns: set[str],
) -> dict[str, pd.DataFrame]:
    """The run's job when the run is for one partition, else the newest completed jobs."""
    db, store = factory_db.get_db(), object_store.get_store()
    partition = context.run.tags.get("dagster/partition")
    if partition:
        jobs = [get_job(db, partition)]
    else:
        jobs = sorted(jobs_in(db, ("completed",)), key=lambda job: job.completed_at, reverse=True)[
            :newest
        ]
    # A multi-table job's outputs are per table ({"tables": ...}): the YAML tests read one table.
    return {
        job.id: load_tabular_output(store, job, columns)
        for job in jobs
        if (job.outputs or {}).get("parquet")
    }


def build_yaml_checks(specs: list[TestSpec], settings: Settings) -> list[dg.AssetChecksDefinition]:
    """One multi-asset check per asset that the YAML tests."""
    by_asset: dict[str, list[TestSpec]] = {}
    for spec in specs:
        by_asset.setdefault(spec.asset, []).append(spec)
    return [_asset_checks(asset, tests, settings) for asset, tests in sorted(by_asset.items())]


def _asset_checks(
    asset: str, specs: list[TestSpec], settings: Settings
) -> dg.AssetChecksDefinition:
    by_key = {dg.AssetCheckKey(dg.AssetKey(asset), spec.name): spec for spec in specs}

    @dg.multi_asset_check(
        name=f"{asset}_yaml_checks",
        specs=[check_spec(spec) for spec in specs],
        can_subset=True,
        description=f"YAML data tests on {asset}, run through Great Expectations.",
    )
    def yaml_checks(
        context: dg.AssetCheckExecutionContext,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
    ):
        selected = [by_key[key] for key in sorted(context.selected_asset_check_keys, key=str)]
        db = factory_db.get_db()
        cache: dict[str, pd.DataFrame] = {}

        def related(name: str) -> pd.DataFrame:
            if name not in cache:
                cache[name] = load_db_table(db, name)
            return cache[name]

        if asset == "tabular_dataset":
            columns = set().union(*(spec.columns_read for spec in selected))
            tables = _tabular_tables(
                context, factory_db, object_store, settings.checks.tabular_jobs, columns
            )
        else:
            tables = {"": related(asset)}
        context.log.info(
            f"{len(selected)} test(s) on {asset}: "
            + ", ".join(f"{label or asset} ({len(frame)} rows)" for label, frame in tables.items())
        )
        per_table = {label: run_tests(selected, frame, related) for label, frame in tables.items()}
        for index, spec in enumerate(selected):
            measured = {label: results[index] for label, results in per_table.items()}
            yield check_result(spec.asset, yaml_outcome(spec, measured))

    return yaml_checks
