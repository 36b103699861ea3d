"""The tabular use case on its own, without Dagster: a confirmed job runs to Completed with its
checks, a table that breaks its schema is Blocked (kept, the job failed and retryable), a second
start is refused; on SQLite and on PostgreSQL."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from synth_pipelines.core.checks.names import (
    FITTED_DCR,
    FITTED_IDENTICAL,
    FITTED_KEYS,
    FITTED_QUALITY,
    TABULAR_ACCEPTED_CATEGORIES,
    TABULAR_NOT_NULL,
    TABULAR_PATTERN,
    TABULAR_RANGES,
    TABULAR_UNIQUE,
)
from synth_pipelines.core.errors import ConflictError
from synth_pipelines.core.tabular.execution import Blocked, Completed, run_job
from synth_pipelines.core.tabular.jobs import (
    JobParams,
    confirm_job,
    create_job,
    get_job,
    retry_job,
)
from synth_pipelines.core.tabular.schema import TableSchema

SCHEMA = TableSchema.parse(
    {
        "name": "reviews",
        "columns": [
            {"name": "id", "type": "integer", "semantic_type": "id", "unique": True},
            {"name": "rating", "type": "integer", "min": 1, "max": 5},
            {
                "name": "sentiment",
                "type": "category",
                "source": "llm",
                "categories": ["positive", "negative"],
            },
        ],
    }
)


class FixedFiller:
    """Stands in for the LLM (an external service): fills every LLM column with one value."""

    def __init__(self, value: str) -> None:
        self.value, self.calls = value, 0

    def fill(self, schema, table: pa.Table, columns: list[str]) -> tuple[pa.Table, int]:
        self.calls += 1
        for name in columns:
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, pa.array([self.value] * table.num_rows))
        return table, 0


def confirmed(db, rows: int = 300) -> str:
    job = create_job(db, "reviews", SCHEMA, "test")
    confirm_job(db, job.id, JobParams(rows, 100, 1, 1.0, 7))
    return job.id


def test_a_job_completes_with_its_checks_and_progress(factory_db, store) -> None:
    job_id = confirmed(factory_db)
    seen = []
    filler = FixedFiller("positive")
    outcome = run_job(
        factory_db, store, job_id, "run-1", lease_seconds=60, llm=lambda: filler,
        on_progress=lambda state: seen.append(state.completed_chunks),
    )  # fmt: skip
    assert isinstance(outcome, Completed) and filler.calls >= 1
    assert outcome.result.rows == 300 and seen[-1] == 3
    # no column has a pattern: that check is skipped (not passed), and blocks nothing
    assert {c.name: c.status for c in outcome.checks} == {
        TABULAR_NOT_NULL: "passed",
        TABULAR_UNIQUE: "passed",
        TABULAR_RANGES: "passed",
        TABULAR_ACCEPTED_CATEGORIES: "passed",
        TABULAR_PATTERN: "skipped",
        # a prompt-drafted job has no sample to judge against
        FITTED_QUALITY: "skipped",
        FITTED_DCR: "skipped",
        FITTED_IDENTICAL: "skipped",
        FITTED_KEYS: "skipped",
    }
    assert next(c for c in outcome.checks if c.name == FITTED_DCR).description.startswith(
        "skipped: not a fitted job"
    )
    job = get_job(factory_db, job_id)
    assert job.status == "completed" and job.outputs == outcome.result.outputs
    assert store.exists(outcome.result.outputs["parquet"])
    with pytest.raises(ConflictError, match="already completed"):
        run_job(factory_db, store, job_id, "run-2", lease_seconds=60, llm=lambda: filler)


def test_a_table_that_breaks_its_schema_is_blocked_and_retryable(factory_db, store) -> None:
    job_id = confirmed(factory_db)
    outcome = run_job(
        factory_db, store, job_id, "run-1", lease_seconds=60, llm=lambda: FixedFiller("meh")
    )
    assert isinstance(outcome, Blocked)
    assert "accepted_categories" in outcome.reasons
    assert pc.all(pc.equal(outcome.result.table["sentiment"], "meh")).as_py()
    job = get_job(factory_db, job_id)
    assert job.status == "failed" and "schema checks failed" in job.error
    assert retry_job(factory_db, job_id).status == "confirmed"


def test_llm_columns_without_an_llm_fail_the_job_clearly(factory_db, store) -> None:
    job_id = confirmed(factory_db)
    with pytest.raises(Exception, match="no LLM is configured"):
        run_job(factory_db, store, job_id, "run-1", lease_seconds=60, llm=None)
    assert get_job(factory_db, job_id).status == "failed"
