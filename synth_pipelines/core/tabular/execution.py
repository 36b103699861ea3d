"""Running one confirmed tabular job: the use case the `tabular_dataset` asset calls.

    start (confirmed -> running, under a lease)
      -> generate in chunks, recording progress and renewing the lease at every chunk
      -> the checks the schema implies, on the stored table
      -> Completed, or Blocked when a blocking check failed (the table is kept for inspection,
         the job is failed with the reasons and can be retried)

An error on the way fails the job (retryable) and re-raises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

from synth_pipelines.core.checks.outcome import CheckOutcome
from synth_pipelines.core.checks.tabular_schema import schema_checks
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.object_store import ObjectStore
from synth_pipelines.core.tabular.jobs import (
    JobParams,
    complete_job,
    fail_job,
    job_params,
    job_schema,
    record_progress,
    start_job,
)
from synth_pipelines.core.tabular.runner import RunProgress, TabularResult, run_tabular_job
from synth_pipelines.core.tabular.schema import TableSchema
from synth_pipelines.core.tabular.semantic_dedup import Embedder


class RowFiller(Protocol):
    """What fills a schema's `source: llm` columns (core.tabular.llm.LLM)."""

    def fill(
        self, schema: TableSchema, table: pa.Table, columns: list[str]
    ) -> tuple[pa.Table, int]: ...


@dataclass(frozen=True)
class Completed:
    """Every blocking check passed: the job is completed and its files are live."""

    job_id: str
    schema: TableSchema
    result: TabularResult
    checks: list[CheckOutcome] = field(default_factory=list)


@dataclass(frozen=True)
class Blocked:
    """The table breaks its own schema: stored and checked, but the job is failed."""

    job_id: str
    schema: TableSchema
    result: TabularResult
    checks: list[CheckOutcome] = field(default_factory=list)

    @property
    def reasons(self) -> str:
        return "; ".join(c.description for c in self.checks if not c.passed and c.blocking)


JobRun = Completed | Blocked


def run_job(
    db: FactoryDatabase,
    store: ObjectStore,
    job_id: str,
    run_id: str,
    *,
    lease_seconds: int,
    embedder: Embedder | None = None,
    llm: Callable[[], RowFiller] | None = None,
    params: JobParams | None = None,
    on_progress: Callable[[RunProgress], None] | None = None,
) -> JobRun:
    """Run `job_id` in `run_id`. ConflictError when it is not waiting to run (completed, or
    running under a live lease). `llm` builds the row filler, called only when the schema has
    LLM columns; `params` overrides the confirmed ones (run config)."""
    job = start_job(db, job_id, run_id, lease_seconds)
    schema = job_schema(job)
    params = params or job_params(job)
    fill = None
    if schema.llm_columns and llm is not None:
        model = llm()

        def fill(table: pa.Table, columns: list[str]) -> tuple[pa.Table, int]:
            return model.fill(schema, table, columns)

    def progress(state: RunProgress) -> None:
        record_progress(
            db,
            job_id,
            completed_chunks=state.completed_chunks,
            total_chunks=state.total_chunks,
            rows_generated=state.rows_generated,
            rows_deduplicated=state.rows_deduplicated,
            llm_rejects=state.llm_rejects,
            lease_seconds=lease_seconds,
        )
        if on_progress is not None:
            on_progress(state)

    try:
        result = run_tabular_job(
            schema,
            params,
            store=store,
            key_prefix=f"tabular/{job_id}/attempt-{job.attempts}",
            embedder=embedder,
            llm_fill=fill,
            on_progress=progress,
        )
        checks = schema_checks(schema, result.table)
    except BaseException as exc:
        fail_job(db, job_id, f"{exc.__class__.__name__}: {exc}")
        raise
    if any(not c.passed and c.blocking for c in checks):
        blocked = Blocked(job_id, schema, result, checks)
        fail_job(db, job_id, f"schema checks failed: {blocked.reasons}")
        return blocked
    stats = {"columns": result.stats, "seconds": round(result.seconds, 3), "bytes": result.bytes}
    complete_job(db, job_id, outputs=result.outputs, stats=stats)
    return Completed(job_id, schema, result, checks)
