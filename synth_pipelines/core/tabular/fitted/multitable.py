"""Tables joined by keys (customers -> orders -> order_items), fitted and sampled together.

`fit_tables` infers and fits every table. A parent's model also holds, per child table, the
number of child rows of each parent row (a hidden column, so the count follows the parent's
other columns), and a child's model holds copies of some of its parent's columns (hidden too),
so that `sample_tables` draws each child row conditional on its own parent's values. Keys are
the generator's: a parent key is a sequential id, and a child's key column is its parent's key
repeated by the sampled count, so every child key is a parent key. A child with more than one
parent takes its count and conditioning from its first relation and draws the other keys
uniformly from those parents' keys.
"""

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel

from synth_pipelines.core.tabular.fitted.infer import infer_schema, schema_names
from synth_pipelines.core.tabular.fitted.model import fit_model, fittable
from synth_pipelines.core.tabular.fitted.sample_io import SampleError
from synth_pipelines.core.tabular.fitted.sampler import encode
from synth_pipelines.core.tabular.generator import check_schema, generate_chunk
from synth_pipelines.core.tabular.schema import TableSchema

__all__ = [
    "FittedRelation",
    "FittedTables",
    "Relation",
    "check_relations",
    "fit_tables",
    "normalised",
    "sample_tables",
]

CONDITION_COLUMNS = 5  # a child row is conditioned on at most this many parent columns
BLOCK_ROWS = 50_000  # parent rows per block when sampling


class Relation(BaseModel):
    """`child.child_key` references `parent.parent_key` (a unique key)."""

    parent: str
    parent_key: str
    child: str
    child_key: str


class FittedRelation(BaseModel):
    relation: Relation
    count_column: str | None  # the parent model's hidden count of child rows (first relation)
    conditioned_on: list[str]  # parent columns, held by the child's model as "__parent__<col>"


class FittedTables(BaseModel):
    tables: dict[str, TableSchema]
    relations: list[FittedRelation]
    order: list[str]  # parents before their children


def _order(tables: list[str], relations: list[Relation]) -> list[str]:
    done: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise SampleError("relations", f"the relations form a cycle ({cycle}): drop one")
        state[name] = "visiting"
        for r in relations:
            if r.child == name:
                visit(r.parent, [*path, name])
        state[name] = "done"
        done.append(name)

    for name in tables:
        visit(name, [])
    return done


def _check(tables: dict[str, pd.DataFrame], relations: list[Relation]) -> None:
    for r in relations:
        for table, key in ((r.parent, r.parent_key), (r.child, r.child_key)):
            if table not in tables:
                raise SampleError(
                    f"{table}.{key}",
                    f"key {r.child}.{r.child_key}={r.parent}.{r.parent_key} names table "
                    f"{table!r}, which is not one of the samples ({', '.join(tables)})",
                )
            if key not in tables[table].columns:
                raise SampleError(f"{table}.{key}", f"table {table!r} has no column {key!r}")
        keys = tables[r.parent][r.parent_key]
        if keys.isna().any() or keys.duplicated().any():
            dup = keys[keys.duplicated()].head(3).tolist()
            raise SampleError(
                f"{r.parent}.{r.parent_key}",
                f"{r.parent}.{r.parent_key} is referenced by {r.child} but is not a unique key "
                f"(empty or repeated values: {dup})",
            )
        refs = tables[r.child][r.child_key].dropna()
        orphans = refs[~refs.isin(set(keys))]
        if len(orphans):
            raise SampleError(
                f"{r.child}.{r.child_key}",
                f"{len(orphans)} value(s) of {r.child}.{r.child_key} reference no "
                f"{r.parent}.{r.parent_key} (e.g. {', '.join(map(str, orphans.unique()[:3]))})",
            )


def normalised(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The tables with their columns named as their schemas name them (identifiers)."""
    return {
        name: df.rename(columns={v: k for k, v in schema_names(df).items()})
        for name, df in tables.items()
    }


def check_relations(tables: dict[str, pd.DataFrame], relations: list[Relation]) -> list[str]:
    """The tables' order, parents first, once `relations` hold on the (normalised) `tables`:
    SampleError naming the table.column for a key that names no table or column, a parent key
    that is not unique, a foreign key value that references nothing, a cycle."""
    _check(tables, relations)
    return _order(list(tables), relations)


def _as_key(schema: TableSchema, name: str, *, unique: bool) -> TableSchema:
    """The schema with `name` an id column: generated keys, never fitted."""
    columns = []
    for c in schema.columns:
        if c.name == name:
            kind = c.type if c.type in ("integer", "string", "uuid") else "string"
            c = c.model_copy(
                update={"type": kind, "semantic_type": "id", "unique": unique, "max": None}
            )
            if kind == "integer" and c.min is None:
                c = c.model_copy(update={"min": 1})
            if kind != "integer":
                c = c.model_copy(update={"min": None})
        columns.append(c)
    keys = {name}
    constraints = [
        k
        for k in schema.constraints
        if not keys & ({k.low, k.high} if k.kind == "inequality" else set(k.columns))
    ]
    return schema.model_copy(update={"columns": columns, "constraints": constraints})


def fit_tables(
    tables: dict[str, pd.DataFrame],
    relations: list[Relation],
    *,
    seed: int = 0,
    min_category_count: int = 5,
) -> FittedTables:
    """Infer and fit every table, with child counts per parent row and child rows conditioned
    on their parent's columns. SampleError for a key that references nothing, a parent key
    that is not unique, a cycle."""
    tables = normalised(tables)
    order = check_relations(tables, relations)
    schemas = {name: infer_schema(df, name=name) for name, df in tables.items()}
    for r in relations:
        schemas[r.parent] = _as_key(schemas[r.parent], r.parent_key, unique=True)
        schemas[r.child] = _as_key(schemas[r.child], r.child_key, unique=False)
    for r in relations:  # a foreign key holds its parent's keys: its range is theirs
        low = schemas[r.parent].column(r.parent_key).min
        columns = [
            c.model_copy(update={"min": low})
            if c.name == r.child_key and c.type == "integer"
            else c
            for c in schemas[r.child].columns
        ]
        schemas[r.child] = schemas[r.child].model_copy(update={"columns": columns})
    first = {}
    for r in relations:
        first.setdefault(r.child, r)
    fitted_relations = []
    frames = {name: df.copy() for name, df in tables.items()}
    hidden: dict[str, dict[str, str]] = {name: {} for name in tables}
    conditions: dict[str, set[str] | None] = {name: None for name in tables}
    for r in relations:
        parent_df, child_df = frames[r.parent], frames[r.child]
        primary = first[r.child] is r
        count_column = None
        conditioned: list[str] = []
        if primary:
            count_column = f"__children__{r.child}"
            counts = child_df[r.child_key].value_counts()
            parent_df[count_column] = parent_df[r.parent_key].map(counts).fillna(0).astype(int)
            hidden[r.parent][count_column] = "integer"
            parent_schema = schemas[r.parent]
            conditioned = [
                c.name for c in parent_schema.columns if fittable(c) and c.name != r.parent_key
            ][:CONDITION_COLUMNS]
            joined = child_df[[r.child_key]].merge(
                tables[r.parent][[r.parent_key, *conditioned]],
                left_on=r.child_key,
                right_on=r.parent_key,
                how="left",
            )
            for name in conditioned:
                child_df[f"__parent__{name}"] = joined[name].to_numpy()
                hidden[r.child][f"__parent__{name}"] = parent_schema.column(name).type
            conditions[r.child] = {f"__parent__{name}" for name in conditioned}
        fitted_relations.append(
            FittedRelation(relation=r, count_column=count_column, conditioned_on=conditioned)
        )
    fitted = {
        name: fit_model(
            frames[name],
            schemas[name],
            seed=seed,
            min_category_count=min_category_count,
            hidden=hidden[name],
            condition_candidates=conditions[name],
        )
        for name in order
    }
    return FittedTables(tables=fitted, relations=fitted_relations, order=order)


def _table_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, 0x7AB1E, index]).generate_state(1)[0])


def sample_tables(
    fitted: FittedTables,
    *,
    rows: int,
    seed: int,
    on_block: Callable[[str, int], None] | None = None,
) -> dict[str, pa.Table]:
    """`rows` rows of each root table and, below them, child rows by the fitted counts,
    conditional on their parent rows: every child key is one of its parent's keys.
    `on_block(table, rows)` after each block of rows (progress, and a run's lease)."""
    out: dict[str, pa.Table] = {}
    counts: dict[str, np.ndarray] = {}  # count column -> counts per parent row
    by_child = {}
    for fr in fitted.relations:
        by_child.setdefault(fr.relation.child, []).append(fr)
    for index, name in enumerate(fitted.order):
        schema = fitted.tables[name]
        check_schema(schema)
        table_seed = _table_seed(seed, index)
        own = by_child.get(name, [])
        if not own:
            blocks = [(rows_, None, None) for rows_ in _split(rows)]
        else:
            primary = own[0]
            parent = out[primary.relation.parent]
            per_parent = counts[primary.count_column or ""]
            blocks = list(_child_blocks(per_parent))
        parts, hidden_parts, offset = [], [], 0
        for chunk_index, block in enumerate(blocks):
            n, parent_rows = block[0], block[1]
            given = None
            if parent_rows is not None:
                given = {}
                parent_cols = parent.take(pa.array(parent_rows))
                child_model = schema.fitted
                for col in primary.conditioned_on:
                    model_col = child_model.column(f"__parent__{col}")
                    given[model_col.name] = encode(model_col, parent_cols.column(col))
            hidden: dict[str, pa.Array] = {}
            table = generate_chunk(
                schema,
                rows=n,
                seed=table_seed,
                chunk_index=chunk_index,
                row_offset=offset,
                given=given,
                hidden=hidden,
            )
            if parent_rows is not None:
                keys = parent.column(primary.relation.parent_key).take(pa.array(parent_rows))
                table = _replace(table, primary.relation.child_key, keys)
                rng = np.random.default_rng([table_seed, chunk_index, 1])
                for other in own[1:]:
                    pool = out[other.relation.parent].column(other.relation.parent_key)
                    picks = rng.integers(0, len(pool), n) if len(pool) else np.zeros(0, int)
                    table = _replace(table, other.relation.child_key, pool.take(pa.array(picks)))
            parts.append(table)
            hidden_parts.append(hidden)
            offset += n
            if on_block is not None:
                on_block(name, n)
        out[name] = pa.concat_tables(parts)
        for fr in fitted.relations:
            if fr.relation.parent == name and fr.count_column:
                values = [h[fr.count_column] for h in hidden_parts if fr.count_column in h]
                merged = pa.concat_arrays(values).fill_null(0).to_numpy(zero_copy_only=False)
                counts[fr.count_column] = np.maximum(merged, 0).astype(np.int64)
    return out


def _split(rows: int) -> list[int]:
    return [min(BLOCK_ROWS, rows - start) for start in range(0, rows, BLOCK_ROWS)] or [0]


def _child_blocks(per_parent: np.ndarray):
    """(child rows, parent row of each child row, None) per block of parent rows."""
    for start in range(0, max(len(per_parent), 1), BLOCK_ROWS):
        block = per_parent[start : start + BLOCK_ROWS]
        parent_rows = np.repeat(np.arange(start, start + len(block)), block)
        yield int(block.sum()), parent_rows, None


def _replace(table: pa.Table, name: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
    index = table.column_names.index(name)
    field = table.schema.field(index)
    return table.set_column(index, field, values.cast(field.type))
