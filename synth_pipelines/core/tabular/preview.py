"""The first rows of a completed tabular job's output, read from its stored Parquet: what a
person looks at before downloading the whole table."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from synth_pipelines.core.errors import ConflictError, FieldError
from synth_pipelines.core.storage.models import TabularJob
from synth_pipelines.core.storage.object_store import ObjectStore

PREVIEW_ROWS = 20


@dataclass(frozen=True)
class TablePreview:
    """`rows` (each a list in `columns`' order) of a table of `total_rows` rows."""

    table: str | None  # a multi-table job's table; None for a one-table job
    columns: list[str]
    rows: list[list[Any]]
    total_rows: int


def output_tables(job: TabularJob) -> dict[str | None, dict[str, str]]:
    """Each table's stored outputs (format → key): {None: ...} for a one-table job, by table
    name (parents first) for a job fitted to tables joined by keys. ConflictError until the
    job has completed."""
    if job.status != "completed" or not job.outputs:
        raise ConflictError(f"tabular job {job.id} is {job.status}, not completed yet")
    if "tables" in job.outputs:
        return dict(job.outputs["tables"])
    return {None: job.outputs}


def preview_output(
    store: ObjectStore, job: TabularJob, table: str | None = None, limit: int = PREVIEW_ROWS
) -> TablePreview:
    """The first `limit` rows of `job`'s table (`table` of a multi-table job). Only the
    Parquet file's first row group is decoded, not the whole table."""
    outputs = output_tables(job)
    if table not in outputs:
        names = ", ".join(str(name) for name in outputs)
        raise FieldError("table", f"tabular job {job.id} has no table {table!r} (tables: {names})")
    with store.open_reader(outputs[table]["parquet"]) as handle:
        seekable = getattr(handle, "seekable", None)
        source = handle if seekable and seekable() else io.BytesIO(handle.read())
        parquet = pq.ParquetFile(source)
        total = parquet.metadata.num_rows
        columns = parquet.schema_arrow.names
        batch = next(parquet.iter_batches(batch_size=limit), None)
    records = batch.to_pylist() if batch is not None else []
    return TablePreview(
        table, columns, [[record[name] for name in columns] for record in records], total
    )


def previews(store: ObjectStore, job: TabularJob, limit: int = PREVIEW_ROWS) -> list[TablePreview]:
    """The preview of every table of `job` (one for a one-table job)."""
    return [preview_output(store, job, name, limit) for name in output_tables(job)]
