"""Running one confirmed tabular job: the use case the `tabular_dataset` asset calls.

    start (confirmed -> running, under a lease)
      -> generate in chunks, recording progress and renewing the lease at every chunk
      -> the checks the schema implies, on the stored table
      -> a fitted job: quality and privacy against its sample (the privacy checks block), the
         HTML report stored beside the table, the reports on the job
      -> Completed, or Blocked when a blocking check failed (the table is kept for inspection,
         the job is failed with the reasons and is not delivered; it can be retried)

An error on the way fails the job (retryable) and re-raises.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from synth_pipelines.core.checks.names import FITTED_DCR, FITTED_IDENTICAL, FITTED_KEYS
from synth_pipelines.core.checks.outcome import CheckOutcome
from synth_pipelines.core.checks.tabular_schema import schema_checks
from synth_pipelines.core.errors import ConflictError
from synth_pipelines.core.security.crypto import KeyWrapper
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.object_store import ObjectStore
from synth_pipelines.core.tabular.fitted.checks import (
    NOT_FITTED,
    ONE_TABLE,
    SAMPLE_DELETED,
    FittedReports,
    fitted_checks,
    skipped,
)
from synth_pipelines.core.tabular.fitted.jobs import delete_sample, is_fitted, load_sample
from synth_pipelines.core.tabular.fitted.related_jobs import TableRun, is_related, run_related_job
from synth_pipelines.core.tabular.jobs import (
    JobParams,
    claimed_job,
    complete_job,
    fail_job,
    job_params,
    job_schema,
    record_chunk_done,
    record_progress,
    record_reports,
    start_job,
)
from synth_pipelines.core.tabular.runner import RunProgress, TabularResult, run_tabular_job
from synth_pipelines.core.tabular.schema import TableSchema
from synth_pipelines.core.tabular.semantic_dedup import Embedder
from synth_pipelines.core.tabular.shards import (
    Shard,
    delete_shards,
    generate_shard,
    plan_shards,
    shard_chunks,
)


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
    fitted: FittedReports | None = None  # a fitted job's reports (skipped ones otherwise)
    # A job fitted to tables joined by keys: each table's run (`result` is the first's).
    tables: dict[str, TableRun] = field(default_factory=dict)


@dataclass(frozen=True)
class Blocked:
    """The table breaks its own schema: stored and checked, but the job is failed."""

    job_id: str
    schema: TableSchema
    result: TabularResult
    checks: list[CheckOutcome] = field(default_factory=list)
    fitted: FittedReports | None = None
    tables: dict[str, TableRun] = field(default_factory=dict)

    @property
    def reasons(self) -> str:
        return "; ".join(c.description for c in self.checks if not c.passed and c.blocking)


JobRun = Completed | Blocked
_FITTED = (FITTED_DCR, FITTED_IDENTICAL)
_BLOCKED_BY = ((_FITTED, "privacy"), ((FITTED_KEYS,), "foreign key"))


@dataclass(frozen=True)
class FittedLimits:
    """A fitted job's privacy limits, its quality bar (below it the quality check warns), and
    whether its sample is deleted once checked ("delete" or "keep"), and the most rows a
    multi-table run makes in all (None: unbounded): SYNTH_TABULAR_*."""

    max_dcr_share: float
    max_identical_share: float
    min_quality: float
    retention: str
    max_rows: int | None = None


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
    keys: Callable[[], KeyWrapper] | None = None,
    limits: FittedLimits | None = None,
    shards: list[Shard] | None = None,
) -> JobRun:
    """Run `job_id` in `run_id`. ConflictError when it is not waiting to run (completed, or
    running under a live lease). `llm` builds the row filler, called only when the schema has
    LLM columns; `params` overrides the confirmed ones (run config). A fitted job's checks read
    its sample with `keys()` (the master keyring) and are judged by `limits` (both needed only
    for a fitted job).

    `shards`: the job's last step of a sharded run (`start_shards`, `run_shard`): the job is
    already this run's, and its first chunks are read from the shards (none: made here), which
    are deleted once the output is written or the run failed."""
    if shards is None:
        job = start_job(db, job_id, run_id, lease_seconds)
    else:
        job = claimed_job(db, job_id, run_id)
    schema = job_schema(job)
    params = params or job_params(job)
    # After shards, progress already counts every first chunk and its rows: it does not fall
    # back while they are read again.
    floor = (params.total_chunks, params.total_rows) if shards else (0, 0)
    fill = None
    if schema.llm_columns and llm is not None:
        model = llm()

        def fill(table: pa.Table, columns: list[str]) -> tuple[pa.Table, int]:
            return model.fill(schema, table, columns)

    def progress(state: RunProgress) -> None:
        record_progress(
            db,
            job_id,
            completed_chunks=max(state.completed_chunks, floor[0]),
            total_chunks=state.total_chunks,
            rows_generated=max(state.rows_generated, floor[1]),
            rows_deduplicated=state.rows_deduplicated,
            llm_rejects=state.llm_rejects,
            lease_seconds=lease_seconds,
        )
        if on_progress is not None:
            on_progress(state)

    prefix = f"tabular/{job_id}/attempt-{job.attempts}"
    if is_related(job):
        return _run_related(db, store, job, params, prefix, keys, limits, progress)
    try:
        result = run_tabular_job(
            schema,
            params,
            store=store,
            key_prefix=prefix,
            embedder=embedder,
            llm_fill=fill,
            on_progress=progress,
            chunks=shard_chunks(store, shards) if shards else None,
        )
        checks = schema_checks(schema, result.table)
        fitted = _fitted_reports(store, job, schema, result, keys, limits, f"{prefix}/report.html")
        checks += fitted.outcomes
        if not any(c.name == FITTED_KEYS for c in fitted.outcomes):
            checks.append(CheckOutcome.skip(FITTED_KEYS, ONE_TABLE))
        if fitted.reports:
            record_reports(db, job_id, fitted.reports)
    except BaseException as exc:
        fail_job(db, job_id, f"{exc.__class__.__name__}: {exc}")
        raise
    finally:
        if shards:
            delete_shards(store, shards)
    if _blocked(db, job_id, checks):
        return Blocked(job_id, schema, result, checks, fitted)
    stats = {"columns": result.stats, "seconds": round(result.seconds, 3), "bytes": result.bytes}
    complete_job(db, job_id, outputs=result.outputs, stats=stats)
    if fitted.reports and limits is not None and limits.retention == "delete":
        delete_sample(db, store, job_id)
    return Completed(job_id, schema, result, checks, fitted)


def start_shards(
    db: FactoryDatabase,
    job_id: str,
    run_id: str,
    *,
    lease_seconds: int,
    shards: int,
    params: JobParams | None = None,
) -> tuple[JobParams, list[Shard]]:
    """The first step of a sharded run: the job started in `run_id` (ConflictError as for
    `run_job`), its params (`params`, else the confirmed ones) and its chunks planned as at most
    `shards` shards, each then made by `run_shard` in a step of its own. A job fitted to several
    tables is not sharded: no shards (its last step makes every table)."""
    job = start_job(db, job_id, run_id, lease_seconds)
    try:
        params = params or job_params(job)
        job_schema(job).check_rows(params.total_rows)
        record_progress(
            db, job_id, completed_chunks=0, total_chunks=params.total_chunks, rows_generated=0,
            rows_deduplicated=0, lease_seconds=lease_seconds,
        )  # fmt: skip
        return params, [] if is_related(job) else plan_shards(job_id, run_id, params, shards)
    except BaseException as exc:
        fail_job(db, job_id, f"{exc.__class__.__name__}: {exc}")
        raise


def run_shard(
    db: FactoryDatabase,
    store: ObjectStore,
    shard: Shard,
    *,
    lease_seconds: int,
    params: JobParams | None = None,
) -> dict[str, int]:
    """One shard of a sharded run, made into the store; each chunk counted on the job and its
    lease renewed. An error fails the job (its other shards then stop at their next chunk);
    ConflictError when the job is no longer this run's, which leaves it as it is."""
    job = claimed_job(db, shard.job_id, shard.run_id)
    params = params or job_params(job)

    def chunk_done(_index: int, rows: int) -> None:
        record_chunk_done(db, shard.job_id, shard.run_id, rows, lease_seconds)

    try:
        return generate_shard(job_schema(job), params, shard, store, on_chunk=chunk_done)
    except ConflictError:
        raise
    except BaseException as exc:
        fail_job(db, shard.job_id, f"shard {shard.index}: {exc.__class__.__name__}: {exc}")
        raise


def _blocked(db: FactoryDatabase, job_id: str, checks: list[CheckOutcome]) -> bool:
    """Fail the job, with the reasons, when a blocking check failed: it is not delivered."""
    blocking = [c for c in checks if not c.passed and c.blocking]
    if not blocking:
        return False
    kinds = next(
        (kind for names, kind in _BLOCKED_BY if any(c.name in names for c in blocking)), "schema"
    )
    reasons = "; ".join(c.description for c in blocking)
    fail_job(db, job_id, f"{kinds} checks failed, not delivered: {reasons}")
    return True


def _run_related(
    db: FactoryDatabase,
    store: ObjectStore,
    job: Any,
    params: JobParams,
    prefix: str,
    keys: Callable[[], KeyWrapper] | None,
    limits: FittedLimits | None,
    progress: Callable[[RunProgress], None],
) -> JobRun:
    """A job fitted to tables joined by keys: every table generated, stored and checked; the
    job blocked when a check blocks on any table."""
    if keys is None or limits is None:
        raise ValueError("a fitted job's checks need the master keyring (keys) and its limits")
    try:
        run = run_related_job(
            store, keys(), job, params, prefix=prefix, max_dcr_share=limits.max_dcr_share,
            max_identical_share=limits.max_identical_share, min_quality=limits.min_quality,
            max_rows=limits.max_rows, on_progress=progress,
        )  # fmt: skip
        if run.reports:
            record_reports(db, job.id, run.reports)
    except BaseException as exc:
        fail_job(db, job.id, f"{exc.__class__.__name__}: {exc}")
        raise
    first = next(iter(run.tables.values()))
    if _blocked(db, job.id, run.checks):
        return Blocked(job.id, first.schema, first.result, run.checks, tables=run.tables)
    complete_job(db, job.id, outputs=run.outputs, stats=run.stats)
    if run.reports and limits.retention == "delete":
        delete_sample(db, store, job.id)
    return Completed(job.id, first.schema, first.result, run.checks, tables=run.tables)


def _fitted_reports(
    store: ObjectStore,
    job: Any,
    schema: TableSchema,
    result: TabularResult,
    keys: Callable[[], KeyWrapper] | None,
    limits: FittedLimits | None,
    report_key: str,
) -> FittedReports:
    """The fitted checks of `result`, its HTML report stored at `report_key` (named in the
    reports); skipped ones for a prompt-drafted job or a deleted sample."""
    if not is_fitted(job):
        return skipped(NOT_FITTED)
    if keys is None or limits is None:
        raise ValueError("a fitted job's checks need the master keyring (keys) and its limits")
    sample = load_sample(store, keys(), job)
    if sample is None:
        return skipped(SAMPLE_DELETED)
    train, holdout = sample
    with tempfile.TemporaryDirectory(prefix="synth_fitted_") as scratch:
        fitted = fitted_checks(
            train,
            holdout,
            result.table,
            schema,
            max_dcr_share=limits.max_dcr_share,
            max_identical_share=limits.max_identical_share,
            min_quality=limits.min_quality,
            report_dir=Path(scratch),
        )
        if fitted.html is not None:
            store.put_file(report_key, fitted.html, "text/html")
            fitted.reports["report"] = report_key
    return fitted
