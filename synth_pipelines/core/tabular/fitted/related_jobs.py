"""A job fitted to several samples joined by keys: created by `POST /tabular/jobs` with several
files and keys (and `synth tabular fit-tables` without --out), run by the tabular_dataset asset
as any job, through `related.fit_samples` and `related.judge_tables`, the code path of the
local `fit-tables --out` too.

    create: read every sample -> check the keys on the whole samples -> split and fit
            -> each table's train and holdout parts stored encrypted under the job's one data
               key ("<table>/train", "<table>/holdout") -> the draft job: its `schema_json` the
               first root table's, its `tables` every table's fitted schema and the keys
    run:    sample every table (`sample_tables`) -> Parquet and CSV per table under the run's
            prefix (each file appears only when complete, and none when one fails) -> per table
            the schema checks, the fitted checks against that table's sample, the orphans of
            its keys -> one outcome per check over the tables (`checks.merge_outcomes`)
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from synth_pipelines.core.checks.names import FITTED_KEYS
from synth_pipelines.core.checks.outcome import CheckOutcome
from synth_pipelines.core.checks.tabular_schema import schema_checks
from synth_pipelines.core.security.crypto import KeyWrapper
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import TabularJob
from synth_pipelines.core.storage.object_store import ObjectStore
from synth_pipelines.core.tabular.fitted.checks import (
    SAMPLE_DELETED,
    FittedReports,
    merge_outcomes,
    skipped,
)
from synth_pipelines.core.tabular.fitted.jobs import PARTS, load_parts, store_fitted_job
from synth_pipelines.core.tabular.fitted.multitable import BLOCK_ROWS, FittedTables
from synth_pipelines.core.tabular.fitted.related import (
    RelatedFit,
    fit_samples,
    judge_tables,
    key_spec,
    keys_outcome,
    orphans_of,
    read_tables,
)
from synth_pipelines.core.tabular.fitted.sample_io import SampleError
from synth_pipelines.core.tabular.jobs import (
    JobParams,
    check_table_rows,
    expected_table_rows,
    first_parents,
)
from synth_pipelines.core.tabular.runner import (
    ROW_GROUP_ROWS,
    RunProgress,
    TabularResult,
    csv_schema,
    csv_table,
    output_keys,
)
from synth_pipelines.core.tabular.schema import TableSchema


def create_related_job(
    db: FactoryDatabase,
    store: ObjectStore,
    keys: KeyWrapper,
    files: list[tuple[bytes | Path, str]],
    key_specs: list[str],
    *,
    owner: str,
    max_bytes: int,
    holdout_share: float,
    min_category_count: int,
    rows: int | None = None,
    seed: int = 0,
) -> TabularJob:
    """A draft job fitted to the samples `files` ((data, file name) each, one table each, named
    after its file) joined by `key_specs` ("child.column=parent.column"); `rows`: rows of each
    root table (default: the first root's sample rows). SampleError naming the table.column."""
    if len(files) < 2:
        raise SampleError(
            "file", "tables joined by keys need two samples or more (one file part per table)"
        )
    tables = read_tables(files, max_bytes=max_bytes)
    related = fit_samples(
        tables, key_specs, holdout_share=holdout_share, seed=seed,
        min_category_count=min_category_count,
    )  # fmt: skip
    fitted = related.fitted
    root = fitted.order[0]
    schemas = {
        name: schema.model_copy(update={"rows": len(tables[name])})
        for name, schema in fitted.tables.items()
    }
    schemas[root] = schemas[root].model_copy(update={"rows": rows or len(tables[root])})
    fitted = fitted.model_copy(update={"tables": schemas})
    parts = {
        f"{name}/{part}": frame
        for name in fitted.order
        for part, frame in zip(PARTS, (related.train[name], related.holdout[name]), strict=True)
    }
    filenames = {table: filename for (_, filename), table in zip(files, tables, strict=True)}
    per_table = {
        name: {
            "filename": filenames[name],
            "rows": len(tables[name]),
            "train_rows": len(related.train[name]),
            "holdout_rows": len(related.holdout[name]),
        }
        for name in fitted.order
    }
    sample = {
        "filename": ", ".join(filenames.values()),
        "rows": sum(t["rows"] for t in per_table.values()),
        "train_rows": sum(t["train_rows"] for t in per_table.values()),
        "holdout_rows": sum(t["holdout_rows"] for t in per_table.values()),
        "seed": seed,
        "tables": per_table,
    }
    summary = ", ".join(f"{name} ({t['rows']:,} rows)" for name, t in per_table.items())
    return store_fitted_job(
        db, store, keys, parts,
        prompt=f"fitted to {len(tables)} tables joined by keys: {summary}",
        schema=schemas[root], owner=owner, sample=sample,
        tables={"fitted": fitted.model_dump(mode="json"),
                "keys": [key_spec(r) for r in related.relations]},
    )  # fmt: skip


def is_related(job: TabularJob) -> bool:
    """Whether `job` was fitted to several tables joined by keys."""
    return job.tables is not None


def job_tables(job: TabularJob) -> FittedTables:
    return FittedTables.model_validate(job.tables["fitted"])


def table_names(job: TabularJob) -> list[str]:
    return list(job.tables["fitted"]["order"])


def load_related(store: ObjectStore, keys: KeyWrapper, job: TabularJob) -> RelatedFit | None:
    """The job's fit with every table's training part and holdout, decrypted; None once its
    sample was deleted."""
    parts = load_parts(store, keys, job)
    if parts is None:
        return None
    fitted = job_tables(job)
    return RelatedFit(
        relations=[fr.relation for fr in fitted.relations],
        train={name: parts[f"{name}/train"] for name in fitted.order},
        holdout={name: parts[f"{name}/holdout"] for name in fitted.order},
        fitted=fitted,
    )


@dataclass(frozen=True)
class TableRun:
    """One table of a multi-table run: what was written, and what its checks found."""

    schema: TableSchema
    result: TabularResult
    checks: list[CheckOutcome]
    fitted: FittedReports


@dataclass(frozen=True)
class RelatedRun:
    tables: dict[str, TableRun]  # parents first
    checks: list[CheckOutcome]  # one per check, over the tables
    reports: dict[str, Any]  # {"tables": {table: that table's fitted reports}}

    @property
    def outputs(self) -> dict[str, Any]:
        return {"tables": {name: run.result.outputs for name, run in self.tables.items()}}

    @property
    def stats(self) -> dict[str, Any]:
        return {
            "tables": {
                name: {"rows": run.result.rows, "bytes": run.result.bytes}
                for name, run in self.tables.items()
            },
            "seconds": round(max((r.result.seconds for r in self.tables.values()), default=0), 3),
        }


def run_related_job(
    store: ObjectStore,
    keys: KeyWrapper,
    job: TabularJob,
    params: JobParams,
    *,
    prefix: str,
    max_dcr_share: float,
    max_identical_share: float,
    min_quality: float,
    max_rows: int | None = None,
    on_progress: Callable[[RunProgress], None] | None = None,
) -> RelatedRun:
    """Generate every table of `job` (`params.total_rows` rows of each root table, and at most
    `max_rows` expected in all), store them under `prefix/<table>/`, and judge them. Progress
    (and so the run's lease) moves at every block of rows."""
    from synth_pipelines.core.tabular.fitted.multitable import sample_tables

    started = time.perf_counter()
    fitted = job_tables(job)
    if max_rows is not None:
        check_table_rows(job, params.total_rows, max_rows)
    report = _block_progress(job, params.total_rows, on_progress)
    generated = sample_tables(fitted, rows=params.total_rows, seed=params.seed, on_block=report)
    outputs = {name: output_keys(f"{prefix}/{name}") for name in fitted.order}
    _write(store, generated, outputs)
    seconds = time.perf_counter() - started
    rows = sum(t.num_rows for t in generated.values())
    if on_progress is not None:
        blocks = report.done if report is not None else len(fitted.order)
        on_progress(RunProgress(blocks, blocks, rows_generated=rows, rows_kept=rows))
    related = load_related(store, keys, job)
    orphans = orphans_of([fr.relation for fr in fitted.relations], generated)
    with tempfile.TemporaryDirectory(prefix="synth_fitted_") as scratch:
        if related is None:
            judged = {name: skipped(SAMPLE_DELETED) for name in fitted.order}
        else:
            judged = {
                r.name: r.judged
                for r in judge_tables(
                    related, generated, max_dcr_share=max_dcr_share,
                    max_identical_share=max_identical_share, min_quality=min_quality,
                    report_dir=Path(scratch),
                )
            }  # fmt: skip
        runs, reports = {}, {}
        for name in fitted.order:
            table, schema, fitted_reports = generated[name], fitted.tables[name], judged[name]
            if fitted_reports.html is not None:
                report_key = f"{prefix}/{name}/report.html"
                store.put_file(report_key, fitted_reports.html, "text/html")
                fitted_reports.reports["report"] = report_key
            if fitted_reports.reports:
                reports[name] = fitted_reports.reports
            checks = [
                *schema_checks(schema, table),
                *(o for o in fitted_reports.outcomes if o.name != FITTED_KEYS),
                keys_outcome(name, orphans[name]),
            ]
            result = TabularResult(
                table=table,
                progress=RunProgress(1, 1, rows_generated=table.num_rows, rows_kept=table.num_rows),
                seconds=seconds,
                outputs=outputs[name],
                bytes={fmt: store.size(key) for fmt, key in outputs[name].items()},
                stats={},
                preview=table.slice(0, 10).to_pylist(),
            )
            runs[name] = TableRun(schema, result, checks, fitted_reports)
    merged = merge_outcomes({name: run.checks for name, run in runs.items()})
    return RelatedRun(runs, merged, {"tables": reports} if reports else {})


class _BlockProgress:
    """`sample_tables`' blocks as a run's progress (which renews its lease): the total is the
    expected count of blocks, so a child whose counts run over it holds at 'total - 1'."""

    def __init__(self, total: int, on_progress: Callable[[RunProgress], None]):
        self.total, self.on_progress = max(total, 1), on_progress
        self.done = self.rows = 0

    def __call__(self, table: str, rows: int) -> None:
        self.done += 1
        self.rows += rows
        shown = min(self.done, self.total - 1)
        self.on_progress(RunProgress(shown, self.total, self.rows, self.rows))


def _block_progress(
    job: TabularJob, root_rows: int, on_progress: Callable[[RunProgress], None] | None
) -> _BlockProgress | None:
    if on_progress is None:
        return None
    expected = expected_table_rows(job, root_rows)
    # a root's blocks are of its rows, a child's of its parent's rows
    parents = first_parents(job)
    blocks = sum(
        math.ceil(max(expected[parents.get(name, name)], 1) / BLOCK_ROWS) for name in expected
    )
    return _BlockProgress(blocks, on_progress)


def _write(store: ObjectStore, tables: dict[str, pa.Table], outputs: dict[str, dict]) -> None:
    """Parquet (zstd) and CSV of every table; each object appears when its writer closes, and
    an error on any table discards every one of them."""
    with contextlib.ExitStack() as stack:
        for name, table in tables.items():
            keys = outputs[name]
            sink = stack.enter_context(
                store.open_writer(keys["parquet"], "application/vnd.apache.parquet")
            )
            pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP_ROWS)
            sink = stack.enter_context(store.open_writer(keys["csv"], "text/csv"))
            with pacsv.CSVWriter(sink, csv_schema(table.schema)) as writer:
                writer.write_table(csv_table(table))
