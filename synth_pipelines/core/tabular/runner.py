"""Run one confirmed tabular job: parallel chunks → exact dedup → LLM columns → semantic dedup →
top-up to the requested row count → Parquet (zstd) and CSV in the object store, with stats."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.storage.object_store import ObjectStore
from synth_pipelines.core.tabular.dedup import ExactDeduplicator, Keys, table_keys
from synth_pipelines.core.tabular.generator import (
    arrow_schema,
    generate_chunk,
    generate_keyed_table,
)
from synth_pipelines.core.tabular.jobs import JobParams
from synth_pipelines.core.tabular.schema import TableSchema
from synth_pipelines.core.tabular.semantic_dedup import Embedder, SemanticDeduplicator
from synth_pipelines.core.tabular.stats import ColumnStats

ROW_GROUP_ROWS = 128 * 1024  # ~1-10 MB groups: large enough to scan fast, small enough to skip
FREE_TEXT = ("sentence", "paragraph")
# Top-up chunks in a row that add no new row before the job gives up: the schema cannot hold
# more distinct rows.
STALL_LIMIT = 5

# (rows, columns) → (filled rows, rejected rows): an LLM filling the `source: llm` columns.
LLMFill = Callable[[pa.Table, list[str]], tuple[pa.Table, int]]
Progress = Callable[["RunProgress"], None]


@dataclass
class RunProgress:
    completed_chunks: int = 0
    total_chunks: int = 0
    rows_generated: int = 0
    rows_kept: int = 0
    exact_duplicates: int = 0
    semantic_duplicates: int = 0
    llm_rejects: int = 0

    @property
    def rows_deduplicated(self) -> int:
        return self.exact_duplicates + self.semantic_duplicates


@dataclass
class TabularResult:
    table: pa.Table  # the output, as written (the checks run on it)
    progress: RunProgress
    seconds: float
    outputs: dict[str, str]  # format → object key
    bytes: dict[str, int]
    stats: dict[str, dict[str, Any]]
    preview: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.table.num_rows

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def text_columns(schema: TableSchema) -> list[str]:
    """Columns of free text, where near-duplicates matter: semantic dedup looks at these."""
    return [
        column.name
        for column in schema.columns
        if column.semantic_type in FREE_TEXT or (column.source == "llm" and column.type == "string")
    ]


def output_keys(prefix: str) -> dict[str, str]:
    return {"parquet": f"{prefix}/data.parquet", "csv": f"{prefix}/data.csv"}


def run_tabular_job(
    schema: TableSchema,
    params: JobParams,
    *,
    store: ObjectStore,
    key_prefix: str,
    embedder: Embedder | None = None,
    llm_fill: LLMFill | None = None,
    on_progress: Progress | None = None,
    chunks: Iterable[tuple[int, pa.Table, Keys]] | None = None,
) -> TabularResult:
    """Generate `params.total_rows` distinct rows of `schema` and store them as Parquet and CSV.

    Semantic dedup runs when an embedder is given, the schema has free-text columns and the
    threshold is below 1. Nothing is written to the store until both files are complete.
    `chunks`: the job's first `params.total_chunks` chunks with their keys, made elsewhere (a
    sharded job's steps, `shards.shard_chunks`); by default they are generated here.
    """
    started = time.perf_counter()
    schema.check_rows(params.total_rows)
    state = RunProgress(total_chunks=params.total_chunks)
    exact = ExactDeduplicator(schema.unique_columns or None, expected_rows=params.total_rows)
    stats = ColumnStats(arrow_schema(schema), schema.unique_columns)
    texts = text_columns(schema)
    semantic = (
        SemanticDeduplicator(texts, threshold=params.dedup_threshold, embedder=embedder)
        if embedder is not None and texts and params.dedup_threshold < 1
        else None
    )
    to_fill = schema.llm_columns
    if to_fill and llm_fill is None:
        raise InvalidInputError(
            f"columns {', '.join(to_fill)} are filled by an LLM (source: llm), but no LLM is "
            "configured: set SYNTH_LLM_BASE_URL, or set their source to local"
        )

    keys = output_keys(key_prefix)
    # Both files stream straight into the store; each becomes visible only when complete (an
    # atomic rename locally, the upload's completion on S3), and an error discards both.
    with contextlib.ExitStack() as stack:
        writers: dict[str, Any] = {}
        pending: list[pa.Table] = []
        pending_rows = 0
        kept: list[pa.Table] = []
        writes: list[Future] = []
        encoders = {
            fmt: stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix=f"tabular-{fmt}"))
            for fmt in ("parquet", "csv")
        }

        def flush(final: bool = False) -> None:
            nonlocal pending, pending_rows
            if not pending or (pending_rows < ROW_GROUP_ROWS and not final):
                return
            table = pa.concat_tables(pending)
            kept.append(table)
            if not writers:
                parquet_sink = stack.enter_context(
                    store.open_writer(keys["parquet"], "application/vnd.apache.parquet")
                )
                csv_sink = stack.enter_context(store.open_writer(keys["csv"], "text/csv"))
                writers["parquet"] = stack.enter_context(
                    pq.ParquetWriter(
                        parquet_sink,
                        table.schema,
                        compression="zstd",
                        use_dictionary=stats.few_valued(table.num_rows),
                    )
                )
                writers["csv"] = stack.enter_context(
                    pacsv.CSVWriter(csv_sink, csv_schema(table.schema))
                )
                # Unwinding (an error included) first waits for queued writes, then closes.
                stack.callback(wait, writes)
            # Each format is encoded on its own thread (Arrow releases the GIL) while this one
            # deduplicates the next chunk; one thread per format keeps each file in order.
            for fmt, write in (
                ("parquet", lambda t: writers["parquet"].write_table(t, ROW_GROUP_ROWS)),
                ("csv", lambda t: writers["csv"].write_table(csv_table(t))),
            ):
                writes.append(encoders[fmt].submit(write, table))
            pending, pending_rows = [], 0

        def take(chunk: pa.Table, keys: Keys) -> int:
            """Dedup one chunk (`keys`: its `table_keys`, one hash per value, for dedup and the
            distinct counts) and keep what the job still needs; the number of rows kept."""
            nonlocal pending_rows
            state.rows_generated += chunk.num_rows
            keep = exact.keep(chunk, keys)
            state.exact_duplicates += int(chunk.num_rows - keep.sum())
            room = params.total_rows - state.rows_kept
            if not keep.all() or keep.sum() > room:
                keep[np.flatnonzero(keep)[room:]] = False
                chunk = chunk.filter(pa.array(keep))
                keys = {name: (k[keep], v[keep]) for name, (k, v) in keys.items()}
            if to_fill and chunk.num_rows:
                chunk, rejects = llm_fill(chunk, to_fill)  # type: ignore[misc]
                state.llm_rejects += rejects
            if semantic is not None and chunk.num_rows:
                chunk, removed = semantic.filter(chunk)
                state.semantic_duplicates += removed
            if chunk.num_rows:
                if to_fill or semantic is not None:  # rows changed or went: hash them again
                    keys = table_keys(chunk)
                stats.update(chunk, keys)
                pending.append(chunk)
                pending_rows += chunk.num_rows
                state.rows_kept += chunk.num_rows
                flush()
            state.completed_chunks += 1
            if on_progress is not None:
                on_progress(state)
            return chunk.num_rows

        if chunks is None:
            chunks = generate_keyed_table(
                schema,
                total_rows=params.total_rows,
                chunk_size=params.chunk_size,
                seed=params.seed,
                max_workers=params.max_workers,
            )
        for _, chunk, chunk_keys in chunks:
            take(chunk, chunk_keys)
        # Top up what dedup removed, with further chunks of the same seed.
        index, stalled = params.total_chunks, 0
        while state.rows_kept < params.total_rows:
            state.total_chunks += 1
            chunk = generate_chunk(
                schema,
                rows=params.chunk_size,
                seed=params.seed,
                chunk_index=index,
                row_offset=index * params.chunk_size,
            )
            index += 1
            stalled = 0 if take(chunk, table_keys(chunk)) else stalled + 1
            if stalled >= STALL_LIMIT:
                raise InvalidInputError(
                    f"only {state.rows_kept} distinct rows of {params.total_rows} could be "
                    "generated: widen the ranges or categories of the unique columns, or ask "
                    "for fewer rows"
                )
        flush(final=True)
        for write in writes:
            write.result()  # an encoding error fails the job and discards both files

    table = pa.concat_tables(kept) if kept else arrow_schema(schema).empty_table()
    preview = table.slice(0, 10).to_pylist()
    sizes = {fmt: store.size(key) for fmt, key in keys.items()}

    return TabularResult(
        table=table,
        progress=state,
        seconds=time.perf_counter() - started,
        outputs=keys,
        bytes=sizes,
        stats=stats.result(),
        preview=preview,
    )


def csv_schema(schema: pa.Schema) -> pa.Schema:
    """The schema of `csv_table`: UTC timestamps as strings."""
    return pa.schema(
        [pa.field(f.name, pa.string()) if _utc_timestamp(f.type) else f for f in schema]
    )


def csv_table(table: pa.Table) -> pa.Table:
    """`table` with its UTC timestamp columns as ISO text ("2024-05-01 12:00:00.000000Z"), the
    text Arrow's CSV writer gives them: it formats time-zone-aware values through the zone
    database one by one (1.1 of a 1M-row job's CPU seconds for one column), the naive value
    and the "Z" are vectorised (0.05 s)."""
    for index, column in enumerate(table.schema):
        if _utc_timestamp(column.type):
            naive = table.column(index).cast(pa.timestamp(column.type.unit))
            text = pc.binary_join_element_wise(naive.cast(pa.string()), "Z", "")
            table = table.set_column(index, column.name, text)
    return table


def _utc_timestamp(kind: pa.DataType) -> bool:
    return pa.types.is_timestamp(kind) and kind.tz in ("UTC", "+00:00", "Z")
