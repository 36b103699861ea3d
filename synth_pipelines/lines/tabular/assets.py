"""Tabular datasets: one partition per confirmed job, generated in parallel chunks, deduplicated,
validated by checks derived from the job's schema, stored as Parquet and CSV."""

from collections.abc import Iterator
from dataclasses import asdict

import dagster as dg
from pydantic import Field

from synth_pipelines.core.checks.outcome import ERROR
from synth_pipelines.core.checks.tabular_schema import CHECKS, SEVERITY
from synth_pipelines.core.errors import ConflictError, SynthError
from synth_pipelines.core.markdown_images import png_markdown
from synth_pipelines.core.tabular.execution import (
    Blocked,
    FittedLimits,
    JobRun,
    run_job,
    run_shard,
    start_shards,
)
from synth_pipelines.core.tabular.fitted.checks import CHECKS as FITTED_CHECKS
from synth_pipelines.core.tabular.fitted.checks import SEVERITY as FITTED_SEVERITY
from synth_pipelines.core.tabular.jobs import JobParams, overridden_params
from synth_pipelines.core.tabular.llm import llm_configured
from synth_pipelines.core.tabular.runner import RunProgress
from synth_pipelines.core.tabular.schema import TableSchema
from synth_pipelines.core.tabular.shards import Shard
from synth_pipelines.dbt_like_checks.results import check_result
from synth_pipelines.partitions import tabular_jobs
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.resources.keys import MasterKeyResource
from synth_pipelines.resources.llm import LLMResource
from synth_pipelines.resources.object_store import ObjectStoreResource
from synth_pipelines.resources.step_outputs import STEP_OUTPUTS, run_prefix
from synth_pipelines.resources.tabular import TextEmbedderResource
from synth_pipelines.settings import Settings, TabularSettings

ASSET = "tabular_dataset"
CHECK_SPECS = [
    dg.AssetCheckSpec(
        name,
        asset=ASSET,
        blocking=SEVERITY[name] == ERROR,
        description=f"The job's schema, {constraint.replace('_', ' ')}: every column it declares",
    )
    for name, constraint in CHECKS.items()
] + [
    dg.AssetCheckSpec(
        name,
        asset=ASSET,
        blocking=FITTED_SEVERITY[name] == ERROR,
        description=f"A job fitted to a real sample: {what} (skipped for prompt-drafted jobs)",
    )
    for name, what in FITTED_CHECKS.items()
]


def schema_table(schema: TableSchema) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=column.name,
                type=column.type,
                description=" ".join(
                    ([f"semantic: {column.semantic_type}"] if column.semantic_type else [])
                    + column.constraint_labels()
                ),
                constraints=dg.TableColumnConstraints(
                    nullable=column.nullable > 0, unique=column.unique
                ),
            )
            for column in schema.columns
        ]
    )


def tabular_dataset_config(tabular: TabularSettings) -> type[dg.Config]:
    """The run config of tabular_dataset: overrides of the job's confirmed params, which
    themselves defaulted from `tabular` (the environment) at confirmation."""

    class TabularDatasetConfig(dg.Config):
        """Per-run overrides of one job's confirmed params; empty = the confirmed value."""

        total_rows: int | None = Field(
            default=None,
            ge=1,
            le=tabular.max_rows,
            description=f"Rows to generate (at most SYNTH_TABULAR_MAX_ROWS={tabular.max_rows}); "
            "empty = the job's confirmed total_rows.",
        )
        chunk_size: int | None = Field(
            default=None,
            ge=1,
            le=10_000_000,
            description="Rows per parallel chunk; empty = the job's confirmed chunk_size "
            f"(confirmations default to SYNTH_TABULAR_CHUNK_SIZE={tabular.chunk_size}).",
        )
        dedup_threshold: float | None = Field(
            default=None,
            gt=0,
            le=1,
            description="Cosine similarity above which free-text rows are near-duplicates (1: "
            "semantic dedup off); empty = the job's confirmed value (confirmations default to "
            f"SYNTH_TABULAR_DEDUP_THRESHOLD={tabular.dedup_threshold}).",
        )

        def overrides(self) -> dict:
            """The fields this run sets."""
            return {name: value for name, value in self.model_dump().items() if value is not None}

    return TabularDatasetConfig


DESCRIPTION = (
    "One confirmed tabular job: rows generated in parallel chunks from its schema (or from the "
    "model fitted to a real sample), exact and semantic dedup with top-up to the requested "
    "count, Parquet (zstd) and CSV in the object store; checks derived from the schema run on "
    "every materialization, and a fitted job's quality and privacy checks against its sample "
    "(privacy blocks delivery). A job fitted to several samples joined by keys generates every "
    "table (Parquet and CSV each), checks each against its own sample and every foreign key (an "
    "orphan blocks), each check's result covering all the tables."
)
SHARDED = (
    " Its chunks are split into SYNTH_TABULAR_SHARDS={shards} shards, each a step of its own "
    "(tabular_shard, on any Celery worker), read back in chunk order by tabular_assemble, which "
    "dedups, writes and checks as one step would: the rows are the same."
)
ASSET_ATTRIBUTES = {
    "group_name": "tabular",
    "owners": ["team:synth-tabular"],
    "tags": {"domain": "tabular"},
    "kinds": {"python", "parquet"},
}


def build_tabular_dataset(settings: Settings) -> dg.AssetsDefinition:
    """The tabular_dataset asset, with the job lease from `settings` and run config overriding
    the job's row count, chunk size and dedup threshold: one step, or with SYNTH_TABULAR_SHARDS
    above 1, a graph of a plan step, a step per shard and an assembling step."""
    if settings.tabular.shards > 1:
        return _sharded_tabular_dataset(settings)
    TabularDatasetConfig = tabular_dataset_config(settings.tabular)

    @dg.asset(
        name=ASSET,
        partitions_def=tabular_jobs,
        check_specs=CHECK_SPECS,
        description=DESCRIPTION,
        **ASSET_ATTRIBUTES,
    )
    def tabular_dataset(
        context: dg.AssetExecutionContext,
        config: TabularDatasetConfig,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
        text_embedder: TextEmbedderResource,
        llm: LLMResource,
        master_key: MasterKeyResource,
    ):
        db = factory_db.get_db()
        overrides = config.overrides()
        params = _params(db, context.partition_key, overrides, settings)
        yield from _run(context, settings, params, overrides, None,
                        db, object_store, text_embedder, llm, master_key)  # fmt: skip

    return tabular_dataset


def _params(db, job_id: str, overrides: dict, settings: Settings) -> JobParams | None:
    """The run's params: the confirmed ones with `overrides` (None: none, the confirmed stand)."""
    try:
        return overridden_params(db, job_id, overrides, settings.tabular.max_rows)
    except SynthError as exc:  # the job is left as it was
        raise dg.Failure(f"run config of tabular job {job_id}: {exc}") from None


def _run(
    context: dg.OpExecutionContext,
    settings: Settings,
    params: JobParams | None,
    overrides: dict,
    shards: list[Shard] | None,
    db,
    object_store: ObjectStoreResource,
    text_embedder: TextEmbedderResource,
    llm: LLMResource,
    master_key: MasterKeyResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The job run (`shards`: its last step after the shards), its metadata and check results."""
    job_id = context.partition_key

    def on_progress(state: RunProgress) -> None:
        context.log.debug(
            f"chunk {state.completed_chunks}/{state.total_chunks}: {state.rows_kept} rows kept"
        )

    try:
        outcome = run_job(
            db,
            object_store.get_store(),
            job_id,
            context.run_id,
            lease_seconds=settings.tabular.lease_seconds,
            embedder=text_embedder.get_embedder(),
            llm=llm.get_llm if llm_configured(llm.base_url, llm.api_key) else None,
            params=params,
            on_progress=on_progress,
            keys=master_key.get_keys,
            limits=FittedLimits(
                max_dcr_share=settings.tabular.max_dcr_share,
                max_identical_share=settings.tabular.max_identical_share,
                min_quality=settings.tabular.min_quality,
                retention=settings.tabular.sample_retention,
                max_rows=settings.tabular.max_rows,
            ),
            shards=shards,
        )
    except ConflictError as exc:
        context.log.warning(str(exc))
        raise dg.Failure(str(exc)) from None
    if isinstance(outcome, Blocked):
        context.log.error(f"tabular job {job_id} blocked: {outcome.reasons}")
    metadata = {**_metadata(outcome), "run_config_overrides": dg.MetadataValue.json(overrides)}
    if shards is None:
        yield dg.MaterializeResult(metadata=metadata)
    else:
        metadata["shards"] = len(shards)
        yield dg.Output(None, output_name=ASSET, metadata=metadata)
    for check in outcome.checks:
        yield check_result(ASSET, check)


def _sharded_tabular_dataset(settings: Settings) -> dg.AssetsDefinition:
    """tabular_dataset as three kinds of steps: `tabular_plan` starts the job and splits its
    chunks into shards; `tabular_shard`, one step per shard, makes its chunks into the store;
    `tabular_assemble` reads them back in chunk order, then dedups, writes and checks."""
    TabularDatasetConfig = tabular_dataset_config(settings.tabular)
    lease = settings.tabular.lease_seconds

    @dg.op(
        name="tabular_plan",
        out={
            "params": dg.Out(dict, io_manager_key=STEP_OUTPUTS),
            "shards": dg.DynamicOut(dict, io_manager_key=STEP_OUTPUTS),
        },
    )
    def tabular_plan(
        context: dg.OpExecutionContext,
        config: TabularDatasetConfig,
        factory_db: FactoryDatabaseResource,
    ):
        """Start the job (as a one-step run does) and split its chunks into shards."""
        db, job_id = factory_db.get_db(), context.partition_key
        overrides = config.overrides()
        wanted = _params(db, job_id, overrides, settings)
        try:
            params, shards = start_shards(
                db, job_id, context.run_id, lease_seconds=lease, shards=settings.tabular.shards,
                params=wanted,
            )  # fmt: skip
        except ConflictError as exc:
            context.log.warning(str(exc))
            raise dg.Failure(str(exc)) from None
        context.log.info(
            f"tabular job {job_id}: {params.total_chunks} chunks in {len(shards)} shard(s)"
        )
        yield dg.Output({"params": asdict(params), "overrides": overrides}, "params")
        for shard in shards:
            yield dg.DynamicOutput(
                shard.to_dict(), mapping_key=f"shard_{shard.index}", output_name="shards"
            )

    @dg.op(name="tabular_shard", out=dg.Out(dict, io_manager_key=STEP_OUTPUTS))
    def tabular_shard(
        context: dg.OpExecutionContext,
        shard: dict,
        params: dict,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
    ) -> dict:
        """One shard's chunks, made into the object store."""
        planned = Shard(**shard)
        try:
            made = run_shard(factory_db.get_db(), object_store.get_store(), planned,
                             lease_seconds=lease, params=JobParams(**params["params"]))  # fmt: skip
        except ConflictError as exc:
            raise dg.Failure(str(exc)) from None
        context.log.info(
            f"shard {planned.index}: chunks {planned.first_chunk}-"
            f"{planned.first_chunk + planned.chunks - 1}, {made['rows']} rows"
        )
        return shard

    @dg.op(
        name="tabular_assemble",
        out={
            ASSET: dg.Out(io_manager_key=STEP_OUTPUTS),
            **{
                spec.get_python_identifier(): dg.Out(is_required=False, io_manager_key=STEP_OUTPUTS)
                for spec in CHECK_SPECS
            },
        },
    )
    def tabular_assemble(
        context: dg.OpExecutionContext,
        params: dict,
        shards: list[dict],
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
        text_embedder: TextEmbedderResource,
        llm: LLMResource,
        master_key: MasterKeyResource,
    ):
        """The shards read back in chunk order: dedup, top-up, LLM columns, output, checks."""
        store = object_store.get_store()
        yield from _run(context, settings, JobParams(**params["params"]), params["overrides"],
                        [Shard(**s) for s in shards], factory_db.get_db(), object_store,
                        text_embedder, llm, master_key)  # fmt: skip
        store.delete_many(list(store.list_keys(run_prefix(context.run_id))))

    @dg.graph_multi_asset(
        outs={
            ASSET: dg.AssetOut(
                description=DESCRIPTION + SHARDED.format(shards=settings.tabular.shards),
                io_manager_key=STEP_OUTPUTS,
                **ASSET_ATTRIBUTES,
            )
        },
        partitions_def=tabular_jobs,
        check_specs=CHECK_SPECS,
        name=ASSET,
    )
    def tabular_dataset_graph():
        params, shards = tabular_plan()
        made = shards.map(lambda shard: tabular_shard(shard, params)).collect()
        outputs = tabular_assemble(params, made)
        names = [ASSET, *(s.get_python_identifier() for s in CHECK_SPECS)]
        return dict(zip(names, outputs, strict=True))

    return tabular_dataset_graph


def _metadata(outcome: JobRun) -> dict:
    if outcome.tables:
        return _tables_metadata(outcome)
    result, state = outcome.result, outcome.result.progress
    return {
        "rows": result.rows,
        "dagster/row_count": result.rows,
        "dagster/column_schema": schema_table(outcome.schema),
        "draft_warnings": dg.MetadataValue.json(outcome.schema.warnings),
        "rows_generated": state.rows_generated,
        "rows_deduplicated": state.rows_deduplicated,
        "exact_duplicates": state.exact_duplicates,
        "semantic_duplicates": state.semantic_duplicates,
        "llm_rejects": state.llm_rejects,
        "chunks": state.completed_chunks,
        "seconds": round(result.seconds, 3),
        "rows_per_second": round(result.rows_per_second),
        "parquet": result.outputs["parquet"],
        "csv": result.outputs["csv"],
        "parquet_bytes": result.bytes["parquet"],
        "preview": dg.MetadataValue.md(_markdown(result.preview)),
        "column_stats": dg.MetadataValue.json(result.stats),
        **_fitted_metadata(outcome),
    }


def _tables_metadata(outcome: JobRun) -> dict:
    """A job fitted to tables joined by keys: the rows of all, and per table (`<table>/...`)
    its rows, quality, DCR share, identical matches, files, report, preview and plots."""
    metadata: dict = {}
    summary = {}
    for name, run in outcome.tables.items():
        reports = run.fitted.reports
        quality, privacy = reports.get("quality") or {}, reports.get("privacy") or {}
        row = {
            "rows": run.result.rows,
            "quality_score": quality.get("score"),
            "dcr_share": privacy.get("dcr_share"),
            "identical_match_share": privacy.get("identical_match_share"),
            "parquet": run.result.outputs["parquet"],
            "csv": run.result.outputs["csv"],
            "report": reports.get("report"),
        }
        summary[name] = row
        for key, value in row.items():
            if value is None:
                continue
            metadata[f"{name}/{key}"] = dg.MetadataValue.path(value) if key == "report" else value
        metadata[f"{name}/column_schema"] = schema_table(run.schema)
        metadata[f"{name}/preview"] = dg.MetadataValue.md(_markdown(run.result.preview))
        if run.fitted.images:
            metadata[f"{name}/plots"] = _plots(run.fitted.images)
    rows = sum(run.result.rows for run in outcome.tables.values())
    return {
        "rows": rows,
        "dagster/row_count": rows,
        "tables": dg.MetadataValue.json(summary),
        "seconds": round(outcome.result.seconds, 3),
        **metadata,
    }


def _fitted_metadata(outcome: JobRun) -> dict:
    """A fitted job's scores, its report's key and its plots (shown inline in the UI)."""
    fitted = outcome.fitted
    if fitted is None or not fitted.reports:
        return {}
    reports = fitted.reports
    quality, privacy = reports["quality"], reports["privacy"]
    metadata = {
        "quality_score": quality["score"],
        "column_shapes": quality["column_shapes"],
        "column_pair_trends": quality["column_pair_trends"],
        "dcr_share": privacy["dcr_share"],
        "identical_match_share": privacy["identical_match_share"],
        "ml_utility": dg.MetadataValue.json(reports["ml_utility"]),
    }
    metadata = {name: value for name, value in metadata.items() if value is not None}
    if reports.get("report"):
        metadata["report"] = dg.MetadataValue.path(reports["report"])
    if fitted.images:
        metadata["plots"] = _plots(fitted.images)
    return metadata


def _plots(images: dict[str, bytes]) -> dg.MetadataValue:
    """A fitted table's report plots, inline in the UI's metadata."""
    return dg.MetadataValue.md(
        "\n\n".join(f"**{name}**\n\n{png_markdown(png, name)}" for name, png in images.items())
    )


def _markdown(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = (str(row[name]).replace("|", "\\|")[:60] for name in header)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
