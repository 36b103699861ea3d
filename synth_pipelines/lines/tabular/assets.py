"""Tabular datasets: one partition per confirmed job, generated in parallel chunks, deduplicated,
validated by checks derived from the job's schema, stored as Parquet and CSV."""

import dagster as dg
from pydantic import Field

from synth_pipelines.core.checks.outcome import ERROR
from synth_pipelines.core.checks.tabular_schema import CHECKS, SEVERITY
from synth_pipelines.core.errors import ConflictError, SynthError
from synth_pipelines.core.markdown_images import png_markdown
from synth_pipelines.core.tabular.execution import Blocked, FittedLimits, JobRun, run_job
from synth_pipelines.core.tabular.fitted.checks import CHECKS as FITTED_CHECKS
from synth_pipelines.core.tabular.fitted.checks import SEVERITY as FITTED_SEVERITY
from synth_pipelines.core.tabular.jobs import overridden_params
from synth_pipelines.core.tabular.llm import llm_configured
from synth_pipelines.core.tabular.runner import RunProgress
from synth_pipelines.core.tabular.schema import TableSchema
from synth_pipelines.dbt_like_checks.results import check_result
from synth_pipelines.partitions import tabular_jobs
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.resources.keys import MasterKeyResource
from synth_pipelines.resources.llm import LLMResource
from synth_pipelines.resources.object_store import ObjectStoreResource
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


def build_tabular_dataset(settings: Settings) -> dg.AssetsDefinition:
    """The tabular_dataset asset, with the job lease from `settings` and run config overriding
    the job's row count, chunk size and dedup threshold."""
    TabularDatasetConfig = tabular_dataset_config(settings.tabular)

    @dg.asset(
        name=ASSET,
        partitions_def=tabular_jobs,
        group_name="tabular",
        owners=["team:synth-tabular"],
        tags={"domain": "tabular"},
        kinds={"python", "parquet"},
        check_specs=CHECK_SPECS,
        description=(
            "One confirmed tabular job: rows generated in parallel chunks from its schema (or "
            "from the model fitted to a real sample), exact and semantic dedup with top-up to "
            "the requested count, Parquet (zstd) and CSV in the object store; checks derived "
            "from the schema run on every materialization, and a fitted job's quality and "
            "privacy checks against its sample (privacy blocks delivery). A job fitted to "
            "several samples joined by keys generates every table (Parquet and CSV each), "
            "checks each against its own sample and every foreign key (an orphan blocks), "
            "each check's result covering all the tables."
        ),
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
        job_id, db = context.partition_key, factory_db.get_db()
        overrides = config.overrides()
        try:
            params = overridden_params(db, job_id, overrides, settings.tabular.max_rows)
        except SynthError as exc:  # the job is left as it was
            raise dg.Failure(f"run config of tabular job {job_id}: {exc}") from None

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
            )
        except ConflictError as exc:
            context.log.warning(str(exc))
            raise dg.Failure(str(exc)) from None
        if isinstance(outcome, Blocked):
            context.log.error(f"tabular job {job_id} blocked: {outcome.reasons}")
        yield dg.MaterializeResult(
            metadata={
                **_metadata(outcome),
                "run_config_overrides": dg.MetadataValue.json(overrides),
            }
        )
        for check in outcome.checks:
            yield check_result(ASSET, check)

    return tabular_dataset


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
