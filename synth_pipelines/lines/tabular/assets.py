"""Tabular datasets: one partition per confirmed job, generated in parallel chunks, deduplicated,
validated by checks derived from the job's schema, stored as Parquet and CSV."""

import dagster as dg

from synth_pipelines.core.errors import ConflictError
from synth_pipelines.core.tabular.checks import CHECKS, CheckOutcome, schema_checks
from synth_pipelines.core.tabular.jobs import (
    complete_job,
    fail_job,
    job_params,
    job_schema,
    record_progress,
    start_job,
)
from synth_pipelines.core.tabular.llm import llm_configured
from synth_pipelines.core.tabular.runner import RunProgress, run_tabular_job
from synth_pipelines.core.tabular.schema import TableSchema
from synth_pipelines.partitions import tabular_jobs
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.resources.llm import LLMResource
from synth_pipelines.resources.object_store import ObjectStoreResource
from synth_pipelines.resources.tabular import TextEmbedderResource
from synth_pipelines.settings import Settings

ASSET = "tabular_dataset"
# A failed check of these blocks downstream use; the others warn.
BLOCKING = {"not_null", "unique", "ranges", "accepted_categories"}


def check_name(check: str) -> str:
    return f"{ASSET}__{check}"


CHECK_SPECS = [
    dg.AssetCheckSpec(
        check_name(check),
        asset=ASSET,
        blocking=check in BLOCKING,
        description=f"The job's schema, {check.replace('_', ' ')}: every column it declares",
    )
    for check in CHECKS
]


def check_result(outcome: CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check_name(outcome.name),
        asset_key=ASSET,
        passed=outcome.passed,
        severity=(
            dg.AssetCheckSeverity.ERROR if outcome.name in BLOCKING else dg.AssetCheckSeverity.WARN
        ),
        description=outcome.description,
        metadata={
            "columns_checked": dg.MetadataValue.json(outcome.columns_checked),
            "failures": dg.MetadataValue.json(outcome.failures),
            "unexpected_count": sum(f["unexpected_count"] for f in outcome.failures.values()),
        },
    )


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


def build_tabular_dataset(settings: Settings) -> dg.AssetsDefinition:
    """The tabular_dataset asset, with the job lease from `settings`."""

    @dg.asset(
        name=ASSET,
        partitions_def=tabular_jobs,
        group_name="tabular",
        kinds={"python", "parquet"},
        check_specs=CHECK_SPECS,
        description=(
            "One confirmed tabular job: rows generated in parallel chunks from its schema, exact "
            "and semantic dedup with top-up to the requested count, Parquet (zstd) and CSV in the "
            "object store; checks derived from the schema run on every materialization."
        ),
    )
    def tabular_dataset(
        context: dg.AssetExecutionContext,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
        text_embedder: TextEmbedderResource,
        llm: LLMResource,
    ):
        job_id = context.partition_key
        db, store = factory_db.get_db(), object_store.get_store()
        try:
            job = start_job(db, job_id, context.run_id, settings.tabular_lease_seconds)
        except ConflictError as exc:
            context.log.warning(str(exc))
            raise dg.Failure(str(exc)) from None
        schema, params = job_schema(job), job_params(job)
        prefix = f"tabular/{job_id}/attempt-{job.attempts}"
        llm_fill = None
        if schema.llm_columns and llm_configured(llm.base_url, llm.api_key):
            model = llm.get_llm()

            def llm_fill(table, columns):
                return model.fill(schema, table, columns)

        def on_progress(state: RunProgress) -> None:
            record_progress(
                db,
                job_id,
                completed_chunks=state.completed_chunks,
                total_chunks=state.total_chunks,
                rows_generated=state.rows_generated,
                rows_deduplicated=state.rows_deduplicated,
                llm_rejects=state.llm_rejects,
                lease_seconds=settings.tabular_lease_seconds,
            )
            context.log.debug(
                f"chunk {state.completed_chunks}/{state.total_chunks}: {state.rows_kept} rows kept"
            )

        try:
            result = run_tabular_job(
                schema,
                params,
                store=store,
                key_prefix=prefix,
                embedder=text_embedder.get_embedder(),
                llm_fill=llm_fill,
                on_progress=on_progress,
            )
            outcomes = schema_checks(schema, result.table)
        except BaseException as exc:
            fail_job(db, job_id, f"{exc.__class__.__name__}: {exc}")
            raise
        state = result.progress
        blocked = [o for o in outcomes if not o.passed and o.name in BLOCKING]
        if blocked:
            # The table is stored and its checks are shown, but the job is not marked done: a
            # failed blocking check means the output breaks its own schema.
            reasons = "; ".join(outcome.description for outcome in blocked)
            fail_job(db, job_id, f"schema checks failed: {reasons}")
        else:
            complete_job(
                db,
                job_id,
                outputs=result.outputs,
                stats={
                    "columns": result.stats,
                    "seconds": round(result.seconds, 3),
                    "bytes": result.bytes,
                },
            )
        yield dg.MaterializeResult(
            metadata={
                "rows": result.rows,
                "dagster/row_count": result.rows,
                "dagster/column_schema": schema_table(schema),
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
            }
        )
        for outcome in outcomes:
            yield check_result(outcome)

    return tabular_dataset


def _markdown(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = (str(row[name]).replace("|", "\\|")[:60] for name in header)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
