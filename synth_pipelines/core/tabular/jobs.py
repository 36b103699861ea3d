"""A tabular job's life in the factory DB: draft → (edits) → confirmed → running → completed or
failed (→ retried). The API writes drafts, edits and confirmations; the sensor reads confirmed
jobs; the `tabular_dataset` asset runs them and writes progress per chunk."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from synth_pipelines.core.clock import aware, utcnow
from synth_pipelines.core.errors import ConflictError, FieldError, NotFoundError
from synth_pipelines.core.security.accounts import Principal
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import TabularJob
from synth_pipelines.core.tabular.generator import check_schema
from synth_pipelines.core.tabular.schema import TableSchema

MAX_CHUNKS = 100_000


@dataclass(frozen=True)
class JobParams:
    """What a person confirms: how many rows, in which chunks, with which dedup and seed."""

    total_rows: int
    chunk_size: int
    max_workers: int
    dedup_threshold: float
    seed: int

    @classmethod
    def parse(
        cls,
        raw: dict[str, Any],
        *,
        default_rows: int | None,
        max_rows: int,
        default_chunk_size: int,
        default_workers: int,
        default_threshold: float,
    ) -> JobParams:
        """Validate a confirmation; FieldError names the field and the accepted range."""

        def integer(name: str, default: int | None, low: int, high: int) -> int:
            value = default if raw.get(name) is None else raw[name]
            if value is None:
                raise FieldError(name, f"{name} is required (an integer from {low} to {high})")
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                hint = " (SYNTH_TABULAR_MAX_ROWS)" if name == "total_rows" else ""
                raise FieldError(
                    name, f"{name} must be an integer from {low} to {high}{hint}, got {value!r}"
                )
            return value

        total = integer("total_rows", default_rows, 1, max_rows)
        chunk = integer("chunk_size", min(default_chunk_size, total), 1, 10_000_000)
        if math.ceil(total / chunk) > MAX_CHUNKS:
            raise FieldError(
                "chunk_size",
                f"chunk_size {chunk} makes more than {MAX_CHUNKS} chunks of {total} rows: "
                "use larger chunks",
            )
        workers = integer("max_workers", default_workers, 1, 64)
        seed = integer("seed", 0, 0, 2**63 - 1)
        threshold = raw.get("dedup_threshold")
        threshold = default_threshold if threshold is None else threshold
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not 0 < threshold <= 1
        ):
            raise FieldError(
                "dedup_threshold",
                "dedup_threshold must be a cosine similarity in (0, 1] (1 turns semantic "
                f"dedup off), got {threshold!r}",
            )
        return cls(total, chunk, workers, float(threshold), seed)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def overridden(self, changes: dict[str, Any], max_rows: int) -> JobParams:
        """These params with `changes` (a run's overrides; None keeps the confirmed value),
        validated as a confirmation is: FieldError names the field and the accepted range."""
        raw = self.as_dict() | {name: value for name, value in changes.items() if value is not None}
        return JobParams.parse(
            raw,
            default_rows=self.total_rows,
            max_rows=max_rows,
            default_chunk_size=self.chunk_size,
            default_workers=self.max_workers,
            default_threshold=self.dedup_threshold,
        )

    @property
    def total_chunks(self) -> int:
        return math.ceil(self.total_rows / self.chunk_size)


def create_job(
    db: FactoryDatabase, prompt: str, schema: TableSchema, drafter: str, **fitted: Any
) -> TabularJob:
    """A draft job. `fitted`: a fitted job's id, owner, sample and wrapped_key."""
    with db.session() as session:
        job = TabularJob(
            **fitted,
            prompt=prompt,
            status="draft",
            schema_json=schema.model_dump(mode="json", exclude_none=True),
            drafter=drafter,
            attempts=0,
            total_chunks=0,
            completed_chunks=0,
            rows_generated=0,
            rows_deduplicated=0,
            llm_rejects=0,
        )
        session.add(job)
        session.flush()
        session.expunge(job)
        return job


def _find(session, job_id: str) -> TabularJob:
    job = session.get(TabularJob, job_id)
    if job is None:
        raise NotFoundError(f"tabular job {job_id!r} does not exist")
    return job


def get_job(db: FactoryDatabase, job_id: str) -> TabularJob:
    with db.session() as session:
        return _find(session, job_id)


def visible_job(db: FactoryDatabase, who: Principal, job_id: str) -> TabularJob:
    """The job if `who` may see it: its owner or an admin. Someone else's job is a 404, not a
    403 (its existence is private too, as a persona's is). A job without an owner (drafted
    through the API's prompt path, which takes no key) is served to whoever has its id, as
    GET /tabular/jobs/{id} serves every job."""
    job = get_job(db, job_id)
    if job.owner is not None and not who.may_see(job.owner):
        raise NotFoundError(f"tabular job {job_id!r} does not exist")
    return job


def visible_jobs(db: FactoryDatabase, who: Principal, limit: int = 200) -> list[TabularJob]:
    """The latest `limit` jobs `who` owns (an admin: everyone's), newest first."""
    query = select(TabularJob).order_by(TabularJob.created_at.desc(), TabularJob.id).limit(limit)
    if not who.is_admin:
        query = query.where(TabularJob.owner == who.user)
    with db.session() as session:
        return list(session.scalars(query))


def job_schema(job: TabularJob) -> TableSchema:
    return TableSchema.model_validate(job.schema_json)


def job_params(job: TabularJob) -> JobParams:
    if job.params is None:
        raise ConflictError(f"tabular job {job.id} is not confirmed")
    return JobParams(**job.params)


def overridden_params(
    db: FactoryDatabase, job_id: str, overrides: dict[str, Any], max_rows: int
) -> JobParams | None:
    """The confirmed params of `job_id` with a run's `overrides` (validated as a confirmation
    is), or None when there are none: the confirmed params stand. ConflictError for a draft."""
    if not overrides:
        return None
    job = get_job(db, job_id)
    params = job_params(job).overridden(overrides, max_rows)
    check_table_rows(job, params.total_rows, max_rows)
    return params


def update_schema(db: FactoryDatabase, job_id: str, schema: TableSchema) -> TabularJob:
    """Replace a draft's schema; a confirmed job's schema is fixed (409)."""
    with db.session(locking=True) as session:
        job = _find(session, job_id)
        if job.status != "draft":
            raise ConflictError(
                f"tabular job {job_id} is {job.status}: only a draft's schema can be edited"
            )
        if job.tables is not None:
            raise ConflictError(
                f"tabular job {job_id} was fitted to tables joined by keys: their schemas were "
                "fitted together and cannot be edited one by one; fit the samples again"
            )
        job.schema_json = schema.model_dump(mode="json", exclude_none=True)
        return job


def first_parents(job: TabularJob) -> dict[str, str]:
    """Each child table of a multi-table job -> the parent of its first relation, the one its
    count and conditioning come from (`multitable.sample_tables`)."""
    parents: dict[str, str] = {}
    for fitted_relation in (job.tables or {}).get("fitted", {}).get("relations", []):
        relation = fitted_relation["relation"]
        parents.setdefault(relation["child"], relation["parent"])
    return parents


def expected_table_rows(job: TabularJob, root_rows: int) -> dict[str, int]:
    """A multi-table job's rows per table when each root table gets `root_rows`: each child's
    rows per parent row as in the samples (the fitted counts' mean), down the chain of first
    parents. Empty for a job of one table."""
    if job.tables is None:
        return {}
    fitted = job.tables["fitted"]
    sampled = {name: t["rows"] for name, t in (job.sample or {}).get("tables", {}).items()}
    parent_of = first_parents(job)
    rows: dict[str, int] = {}
    for name in fitted["order"]:
        parent = parent_of.get(name)
        if parent is None:
            rows[name] = root_rows
        else:
            per_parent = sampled.get(name, 0) / max(sampled.get(parent, 1), 1)
            rows[name] = round(rows[parent] * per_parent)
    return rows


def check_table_rows(job: TabularJob, root_rows: int, max_rows: int) -> None:
    """SYNTH_TABULAR_MAX_ROWS bounds every row a multi-table job makes, children included (their
    expected count): FieldError on `total_rows` naming each table's share."""
    rows = expected_table_rows(job, root_rows)
    if sum(rows.values()) > max_rows:
        shares = ", ".join(f"{name} ~{count:,}" for name, count in rows.items())
        raise FieldError(
            "total_rows",
            f"total_rows {root_rows:,} per root table makes about {sum(rows.values()):,} rows in "
            f"all ({shares}), over SYNTH_TABULAR_MAX_ROWS={max_rows:,}: ask for fewer",
        )


def confirm_job(
    db: FactoryDatabase, job_id: str, params: JobParams, max_rows: int | None = None
) -> TabularJob:
    """draft → confirmed: generation may start. The schema must hold `total_rows` rows, and a
    multi-table job's expected rows in all stay within `max_rows` (SYNTH_TABULAR_MAX_ROWS)."""
    with db.session(locking=True) as session:
        job = _find(session, job_id)
        if job.status != "draft":
            raise ConflictError(f"tabular job {job_id} is {job.status}, not a draft to confirm")
        schema = job_schema(job)
        schema.check_rows(params.total_rows)
        if max_rows is not None:
            check_table_rows(job, params.total_rows, max_rows)
        check_schema(schema)  # what only generation would find (e.g. unsupported regex)
        for table in (job.tables or {}).get("fitted", {}).get("tables", {}).values():
            check_schema(TableSchema.model_validate(table))  # each table of a multi-table job
        job.params = params.as_dict()
        job.total_chunks = params.total_chunks
        job.status = "confirmed"
        job.confirmed_at = utcnow()
        return job


def require_confirmed(job: TabularJob) -> None:
    """Generation never starts on a draft: 409 with what to do."""
    if job.status == "draft" or job.params is None:
        raise ConflictError(
            f"tabular job {job.id} is a draft: confirm its schema first "
            f"(POST /tabular/jobs/{job.id}/confirm)"
        )


def effective_status(job: TabularJob, now: datetime | None = None) -> str:
    """What a client sees: a running job whose lease ran out (its run was killed) is failed,
    even before anything has written that."""
    lease = aware(job.lease_until)
    if job.status == "running" and lease is not None and lease < (now or utcnow()):
        return "failed"
    return job.status


def start_job(
    db: FactoryDatabase, job_id: str, run_id: str, lease_seconds: int = 1800
) -> TabularJob:
    """confirmed → running, progress reset, under a lease renewed at every chunk; a job already
    completed, or running under a live lease, is not started again."""
    with db.session(locking=True) as session:
        job = _find(session, job_id)
        require_confirmed(job)
        if job.status == "completed" or effective_status(job) == "running":
            raise ConflictError(f"tabular job {job_id} is already {job.status}")
        job.status, job.run_id, job.attempts = "running", run_id, job.attempts + 1
        job.lease_until = utcnow() + timedelta(seconds=lease_seconds)
        job.completed_chunks = job.rows_generated = job.rows_deduplicated = job.llm_rejects = 0
        job.error, job.started_at, job.completed_at = None, utcnow(), None
        return job


def claimed_job(db: FactoryDatabase, job_id: str, run_id: str) -> TabularJob:
    """The job that run `run_id` started (`start_job`) in an earlier step of its own (a sharded
    job); ConflictError when it is no longer that run's: it failed, or its lease lapsed and
    another run took it."""
    with db.session() as session:
        job = _find(session, job_id)
        if job.run_id != run_id or effective_status(job) != "running":
            raise ConflictError(
                f"tabular job {job_id} is no longer run by run {run_id} "
                f"(it is {effective_status(job)}, in run {job.run_id})"
            )
        return job


def record_chunk_done(
    db: FactoryDatabase, job_id: str, run_id: str, rows: int, lease_seconds: int = 1800
) -> None:
    """One more chunk generated by a shard of run `run_id` (shards run at once, so the counts
    are added in the database, not written), the lease renewed; ConflictError when the job is
    no longer that run's."""
    with db.session() as session:
        done = session.execute(
            update(TabularJob)
            .where(
                TabularJob.id == job_id,
                TabularJob.run_id == run_id,
                TabularJob.status == "running",
            )
            .values(
                completed_chunks=TabularJob.completed_chunks + 1,
                rows_generated=TabularJob.rows_generated + rows,
                lease_until=utcnow() + timedelta(seconds=lease_seconds),
            )
        )
        if done.rowcount != 1:
            raise ConflictError(f"tabular job {job_id} is no longer run by run {run_id}")


def record_progress(
    db: FactoryDatabase,
    job_id: str,
    *,
    completed_chunks: int,
    total_chunks: int,
    rows_generated: int,
    rows_deduplicated: int,
    llm_rejects: int = 0,
    lease_seconds: int = 1800,
) -> None:
    with db.session() as session:
        job = _find(session, job_id)
        job.lease_until = utcnow() + timedelta(seconds=lease_seconds)
        job.completed_chunks, job.total_chunks = completed_chunks, total_chunks
        job.rows_generated, job.rows_deduplicated = rows_generated, rows_deduplicated
        job.llm_rejects = llm_rejects


def complete_job(
    db: FactoryDatabase, job_id: str, *, outputs: dict[str, Any], stats: dict[str, Any]
) -> TabularJob:
    with db.session() as session:
        job = _find(session, job_id)
        job.status, job.outputs, job.stats = "completed", outputs, stats
        job.lease_until = None
        job.completed_chunks = job.total_chunks
        job.completed_at = utcnow()
        return job


def record_reports(db: FactoryDatabase, job_id: str, reports: dict[str, Any]) -> None:
    """A fitted job's quality and privacy reports of its latest run."""
    with db.session() as session:
        _find(session, job_id).reports = reports


def fail_job(db: FactoryDatabase, job_id: str, error: str) -> None:
    with db.session() as session:
        job = _find(session, job_id)
        job.status, job.error, job.outputs = "failed", error, None
        job.lease_until = None
        job.completed_at = utcnow()


def retry_job(db: FactoryDatabase, job_id: str) -> TabularJob:
    """failed (or running under a lapsed lease) → confirmed: the sensor runs it again."""
    with db.session(locking=True) as session:
        job = _find(session, job_id)
        status = effective_status(job)
        if status != "failed":
            raise ConflictError(
                f"tabular job {job_id} is {status}; only failed jobs can be retried"
            )
        job.status, job.error, job.lease_until = "confirmed", None, None
        return job


def jobs_in(db: FactoryDatabase, statuses: tuple[str, ...]) -> list[TabularJob]:
    """Jobs in any of `statuses`, oldest first (a sensor's query)."""
    return db.in_status(TabularJob, statuses)


def jobs_to_run(db: FactoryDatabase) -> tuple[dict[str, int], set[str]]:
    """What tabular_job_sensor acts on: each confirmed job's id → its attempt, oldest first (a
    retry is a new attempt: a new run). No job's partition is ever removed."""
    return {row.id: row.attempts for row in jobs_in(db, ("confirmed",))}, set()


def retired_jobs(db: FactoryDatabase, ids: Iterable[str], before: datetime) -> set[str]:
    """Those of `ids` whose job completed no later than `before`: delivered, and never run
    again (only a failed job retries), so retention drops their partitions."""
    return db.ids_among(
        TabularJob, ids, TabularJob.status == "completed", TabularJob.completed_at <= before
    )


def progress(job: TabularJob, now: datetime | None = None) -> dict[str, Any]:
    """What a client sees of a job's progress, with an estimated completion while running."""
    total = job.total_chunks or 0
    status = effective_status(job, now)
    done = min(job.completed_chunks or 0, total) if total else 0
    percentage = 100.0 if status == "completed" else (100.0 * done / total if total else 0.0)
    eta = None
    started, now = aware(job.started_at), now or utcnow()
    if status == "running" and started and 0 < done < total:
        elapsed = (now - started).total_seconds()
        eta = now + timedelta(seconds=elapsed * (total - done) / done)
    return {
        "completed_chunks": done,
        "total_chunks": total,
        "progress_percentage": round(percentage, 1),
        "rows_generated": job.rows_generated or 0,
        "rows_deduplicated": job.rows_deduplicated or 0,
        "llm_rejects": job.llm_rejects or 0,
        "estimated_completion": eta,
    }
