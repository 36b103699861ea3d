"""Vectorised tabular generator: fills a `TableSchema` chunk by chunk with numpy + pyarrow.

A chunk is reproducible from `(seed, chunk_index)` alone (plus its row count and `row_offset`):
its generator is `np.random.default_rng([seed, chunk_index])`, spawned into one independent
stream per column (so a column's values do not depend on the other columns). `generate_table`
runs chunks in worker processes and yields them in order; chunk `i` starts at global row
`i * chunk_size`, so ids, unique integers and unique suffixes never collide across chunks, and a
"top-up" after dedup is just more chunks: `generate_table(..., start_chunk=n)`.

Arrow types: string → string, integer → int64, float → float64, boolean → bool, date → date32,
datetime → timestamp("us", tz="UTC"), category → string (plain, not dictionary: it concatenates,
dedups and writes to Parquet like any string), uuid → string (canonical lowercase uuid4).

This module checks a schema, orders its columns (a column after the one it `depends_on`) and
dispatches each to the fill for its type; the values themselves come from:
- `scalar_values`: numbers and their distributions, booleans, categories, dates, datetimes,
  uuids, integer ids and cross-chunk uniqueness of bounded kinds;
- `text_values`: string columns — `semantic_type` (names, emails, addresses, sentences,
  IBANs, …), string ids, unique suffixes and `depends_on` derivations;
- `patterns`: the vectorised sampler for a string column's `pattern` (a regex);
- `vocabulary`: Faker's en_US provider data, loaded once per process.

Rules that span the types:
- Text semantics need a string column (a category column uses its categories; a uuid column is
  always uuid4); `id` works on integer, string and uuid columns.
- `nullable`: exactly `round(rows * nullable)` values per chunk are null (positions random).
- `depends_on`: only email, username, domain and url derive from another (string) column;
  anything else is a SchemaError.
- `source == "llm"` columns are all null here: an LLM backend fills them in afterwards (a
  column derived from an LLM column falls back to random names).

`check_schema(schema)` raises the same SchemaError generation would, without generating.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synth_pipelines.core.tabular.chunk import Chunk, column_error
from synth_pipelines.core.tabular.dedup import Keys, table_keys
from synth_pipelines.core.tabular.fitted.sampler import check_fitted, fitted_arrays
from synth_pipelines.core.tabular.patterns import sample_pattern
from synth_pipelines.core.tabular.scalar_values import (
    DATETIME,
    REFERENCE_DATE,
    fill_boolean,
    fill_category,
    fill_float,
    fill_integer,
    fill_temporal,
    fill_uuid,
)
from synth_pipelines.core.tabular.schema import (
    TEXT_SEMANTICS,
    Column,
    InequalityConstraint,
    SchemaError,
    TableSchema,
)
from synth_pipelines.core.tabular.text_values import fill_string
from synth_pipelines.core.tabular.vocabulary import FAKER_MODULES

__all__ = [
    "ARROW_TYPES",
    "REFERENCE_DATE",
    "arrow_schema",
    "check_schema",
    "generate_chunk",
    "generate_table",
]

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": DATETIME,
    "category": pa.string(),
    "uuid": pa.string(),
}
_DERIVABLE = ("email", "username", "domain", "url")


def arrow_schema(schema: TableSchema) -> pa.Schema:
    """The arrow schema every chunk of `schema` has."""
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type], nullable=True) for c in schema.columns])


_FILLS: dict[str, Callable[[Column, np.random.Generator, Chunk, int], pa.Array]] = {
    "string": fill_string,
    "integer": fill_integer,
    "float": fill_float,
    "boolean": fill_boolean,
    "date": fill_temporal,
    "datetime": fill_temporal,
    "category": fill_category,
    "uuid": fill_uuid,
}


def _check_column(schema: TableSchema, column: Column) -> None:
    semantic = column.semantic_type
    if column.type == "string" and column.pattern is not None:
        sample_pattern(column)
        if column.depends_on is not None:
            raise column_error(
                column, "depends_on", "a pattern column cannot also derive from a column"
            )
    if semantic in TEXT_SEMANTICS and column.type not in ("string", "category", "uuid"):
        raise column_error(
            column,
            "semantic_type",
            f"semantic_type {semantic!r} gives text: declare the column as type string",
        )
    if semantic == "id" and column.type not in ("integer", "string", "uuid"):
        raise column_error(column, "semantic_type", "an id column must be integer, string or uuid")
    if column.depends_on is not None and column.pattern is None:
        if column.type != "string" or semantic not in _DERIVABLE:
            raise column_error(
                column,
                "depends_on",
                "only email, username, domain and url string columns can derive from another "
                f"column (this is a {column.type} column with semantic_type {semantic!r})",
            )
        source = schema.column(column.depends_on)
        if source.type != "string":
            raise column_error(
                column,
                "depends_on",
                f"{column.depends_on!r} is a {source.type} column; derive only from string columns",
            )


def _order(schema: TableSchema) -> list[Column]:
    """Columns in generation order: a column after the one it depends on."""
    done: dict[str, Column] = {}
    visiting: set[str] = set()

    def visit(column: Column) -> None:
        if column.name in done:
            return
        if column.name in visiting:
            raise column_error(column, "depends_on", "columns depend on each other in a cycle")
        visiting.add(column.name)
        if column.depends_on is not None:
            visit(schema.column(column.depends_on))
        visiting.discard(column.name)
        done[column.name] = column

    for column in schema.columns:
        visit(column)
    return list(done.values())


def check_schema(schema: TableSchema) -> None:
    """Raise the SchemaError generation would raise (unsupported pattern, depends_on, a text
    semantic on a number column, a dependency cycle), without generating anything."""
    for column in schema.columns:
        _check_column(schema, column)
    _order(schema)
    check_fitted(schema)


@functools.lru_cache(maxsize=32)
def _checked(schema_json: str) -> TableSchema:
    schema = TableSchema.model_validate_json(schema_json)
    check_schema(schema)
    return schema


# --------------------------------------------------------------------------------------------
# Chunks and tables


def generate_chunk(
    schema: TableSchema,
    *,
    rows: int,
    seed: int,
    chunk_index: int,
    row_offset: int,
    given: dict[str, np.ndarray] | None = None,
    hidden: dict[str, pa.Array] | None = None,
) -> pa.Table:
    """`rows` rows of `schema`, reproducible from (seed, chunk_index); `row_offset` is the
    global index of the first row (for sequential ids and cross-chunk uniqueness). For a
    fitted schema, `given` fixes some model columns (model space: a child's parent columns)
    and `hidden` receives the model's hidden columns (a parent's child counts)."""
    check_schema(schema)
    return _generate(
        schema,
        rows=rows,
        seed=seed,
        chunk_index=chunk_index,
        row_offset=row_offset,
        given=given,
        hidden=hidden,
    )


def _generate(
    schema: TableSchema,
    *,
    rows: int,
    seed: int,
    chunk_index: int,
    row_offset: int,
    given: dict[str, np.ndarray] | None = None,
    hidden: dict[str, pa.Array] | None = None,
) -> pa.Table:
    """A chunk. With a fitted model, its columns are sampled jointly from one more stream
    (`given` fixes some of them, in model space; the model's hidden columns go into `hidden`);
    the other columns come from their fills as without one."""
    if rows < 0 or row_offset < 0 or chunk_index < 0:
        raise ValueError("rows, row_offset and chunk_index must not be negative")
    root = np.random.default_rng([seed, chunk_index])
    streams = dict(
        zip([c.name for c in schema.columns], root.spawn(len(schema.columns)), strict=True)
    )
    chunk = Chunk(rows=rows, row_offset=row_offset)
    # spawned after the columns' streams, so those are the same with or without a model
    fitted = fitted_arrays(schema, rows, root.spawn(1)[0], given) if schema.fitted else {}
    if hidden is not None:
        hidden.update({name: a for name, a in fitted.items() if name.startswith("__")})
    cycled: dict[str, Column] = {}
    for column in schema.columns:
        if column.series_of is not None:
            entity = schema.column(column.series_of)
            chunk.series_entities[column.name] = entity.distinct_capacity() or 1
            cycled[entity.name] = entity
    for column in _order(schema):
        rng = streams[column.name]
        arrow_type = ARROW_TYPES[column.type]
        if column.source == "llm":
            chunk.values[column.name] = pa.nulls(rows, arrow_type)
            continue
        if column.name in fitted:  # nulls included: the model's null pattern
            chunk.values[column.name] = fitted[column.name]
            continue
        if column.name in cycled:
            # The entity of a series: rows cycle through its values, min, min + 1, …, max.
            count = column.distinct_capacity() or 1
            values = pa.array(int(column.min) + (chunk.global_index - 1) % count, pa.int64())
        else:
            values = _FILLS[column.type](column, rng, chunk, seed)
        if column.nullable > 0 and rows:
            nulls = round(rows * column.nullable)
            if nulls:
                mask = np.zeros(rows, dtype=bool)
                mask[rng.choice(rows, size=nulls, replace=False)] = True
                values = pc.if_else(pa.array(mask), pa.scalar(None, arrow_type), values)
        chunk.values[column.name] = values.cast(arrow_type) if values.type != arrow_type else values
    for constraint in schema.constraints:
        if isinstance(constraint, InequalityConstraint):
            _order_pair(chunk, schema, constraint)
    arrays = [chunk.values[c.name] for c in schema.columns]
    return pa.Table.from_arrays(arrays, schema=arrow_schema(schema))


def _order_pair(chunk: Chunk, schema: TableSchema, constraint: InequalityConstraint) -> None:
    """`high >= low` on every row: the rows where it fails swap the two values (a fitted pair
    holds already; a pair of independent fills keeps its values, in order)."""
    low, high = chunk.values[constraint.low], chunk.values[constraint.high]
    if low.type != high.type:
        low = low.cast(pa.float64())
        high = high.cast(pa.float64())
    wrong = pc.fill_null(pc.less(high, low), False)
    if not pc.any(wrong).as_py():
        return
    low_type = ARROW_TYPES[schema.column(constraint.low).type]
    high_type = ARROW_TYPES[schema.column(constraint.high).type]
    chunk.values[constraint.low] = pc.if_else(wrong, high, low).cast(low_type, safe=False)
    chunk.values[constraint.high] = pc.if_else(wrong, low, high).cast(high_type, safe=False)


@dataclass(frozen=True)
class _Failed:
    """A SchemaError raised in a worker process (its constructor does not survive pickling)."""

    field: str
    message: str


def _made(schema: TableSchema, rows: int, seed: int, index: int, offset: int, keyed: bool):
    table = _generate(schema, rows=rows, seed=seed, chunk_index=index, row_offset=offset)
    return table, (table_keys(table) if keyed else None)


def _worker(
    schema_json: str, rows: int, seed: int, chunk_index: int, row_offset: int, keyed: bool
) -> tuple[pa.Table, Keys | None] | _Failed:
    """One chunk in a worker process, with its dedup keys when `keyed`."""
    try:
        return _made(_checked(schema_json), rows, seed, chunk_index, row_offset, keyed)
    except SchemaError as exc:
        return _Failed(exc.field, str(exc))


def _result(future: Future) -> tuple[pa.Table, Keys | None]:
    result = future.result()
    if isinstance(result, _Failed):
        raise SchemaError(result.field, result.message)
    return result


def _mp_context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # Workers fork from a server that already imported numpy, pyarrow (and the pandas it
        # pulls in lazily) and Faker's data modules; importing this module imports its value
        # modules (scalar_values, text_values, patterns, vocabulary, …) with it.
        ctx.set_forkserver_preload([__name__, "pandas", *FAKER_MODULES])
        return ctx
    return multiprocessing.get_context("spawn")


def generate_table(
    schema: TableSchema,
    *,
    total_rows: int,
    chunk_size: int,
    seed: int,
    max_workers: int = 1,
    on_chunk: Callable[[int, int], None] | None = None,
    start_chunk: int = 0,
) -> Iterator[tuple[int, pa.Table]]:
    """Yield (chunk_index, table) for `total_rows` rows in chunks of `chunk_size`, in chunk
    order. Chunk indices start at `start_chunk` (a top-up after dedup passes the next unused
    index); chunk i starts at global row i * chunk_size. `max_workers > 1` generates in worker
    processes (forkserver, else spawn) with at most 2 x workers chunks in flight;
    `max_workers == 1` runs inline. `on_chunk(chunk_index, rows)` is called as each is yielded."""
    for index, table, _keys in _chunks(
        schema, total_rows, chunk_size, seed, max_workers, on_chunk, start_chunk, keyed=False
    ):
        yield index, table


def generate_keyed_table(
    schema: TableSchema,
    *,
    total_rows: int,
    chunk_size: int,
    seed: int,
    max_workers: int = 1,
    start_chunk: int = 0,
) -> Iterator[tuple[int, pa.Table, Keys]]:
    """`generate_table`, each chunk with its `dedup.table_keys`, hashed where it was made (in
    the worker processes: the hashing leaves the calling process, which dedups and writes)."""
    for index, table, keys in _chunks(
        schema, total_rows, chunk_size, seed, max_workers, None, start_chunk, keyed=True
    ):
        assert keys is not None
        yield index, table, keys


def _chunks(
    schema: TableSchema,
    total_rows: int,
    chunk_size: int,
    seed: int,
    max_workers: int,
    on_chunk: Callable[[int, int], None] | None,
    start_chunk: int,
    *,
    keyed: bool,
) -> Iterator[tuple[int, pa.Table, Keys | None]]:
    if total_rows < 0 or chunk_size < 1 or start_chunk < 0:
        raise ValueError("total_rows must be >= 0, chunk_size >= 1 and start_chunk >= 0")
    check_schema(schema)
    n_chunks = -(-total_rows // chunk_size)
    jobs = [
        (start_chunk + i, min(chunk_size, total_rows - i * chunk_size)) for i in range(n_chunks)
    ]

    def emit(index: int, made: tuple[pa.Table, Keys | None]) -> tuple[int, pa.Table, Keys | None]:
        table, keys = made
        if on_chunk is not None:
            on_chunk(index, table.num_rows)
        return index, table, keys

    if max_workers <= 1 or n_chunks <= 1:
        for index, rows in jobs:
            yield emit(index, _made(schema, rows, seed, index, index * chunk_size, keyed))
        return
    schema_json = schema.model_dump_json()
    workers = min(max_workers, n_chunks)
    with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context()) as pool:
        pending: deque[tuple[int, Future]] = deque()
        (first_index, first_rows), *rest = jobs
        queue = iter(rest)

        def submit(index: int, rows: int) -> None:
            args = (schema_json, rows, seed, index, index * chunk_size, keyed)
            pending.append((index, pool.submit(_worker, *args)))

        try:
            # The workers' first chunks are submitted before the first chunk is made here: the
            # forkserver boots (imports, ~0.8 s) on one core while this process generates on
            # the other, and the chunk is the same wherever it is made (seeded by its index).
            for index, rows in itertools.islice(queue, 2 * workers - 1):
                submit(index, rows)
            first = _made(schema, first_rows, seed, first_index, first_index * chunk_size, keyed)
            yield emit(first_index, first)
            for index, rows in queue:
                submit(index, rows)
                if len(pending) >= 2 * workers:
                    done_index, future = pending.popleft()
                    yield emit(done_index, _result(future))
            while pending:
                done_index, future = pending.popleft()
                yield emit(done_index, _result(future))
        finally:
            for _index, future in pending:
                future.cancel()
