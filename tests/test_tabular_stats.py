"""Column statistics gathered chunk by chunk from dedup's value keys: the same numbers pyarrow
computes over the whole table, distinct counts exact up to a limit and estimated (HyperLogLog)
beyond it, within its error."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from synth_pipelines.core.tabular.dedup import table_keys
from synth_pipelines.core.tabular.generator import generate_chunk
from synth_pipelines.core.tabular.schema import TableSchema
from synth_pipelines.core.tabular.stats import ColumnStats, DistinctCounter

SCHEMA = TableSchema.parse(
    {
        "columns": [
            {"name": "id", "type": "integer", "semantic_type": "id", "unique": True},
            {"name": "amount", "type": "float", "min": 0, "max": 100, "nullable": 0.1},
            {"name": "qty", "type": "integer", "min": 1, "max": 50},
            {"name": "when", "type": "datetime", "min": "2024-01-01", "max": "2024-12-31"},
            {"name": "flag", "type": "boolean", "nullable": 0.2},
            {"name": "kind", "type": "category", "categories": ["a", "b", "c"]},
            {"name": "name", "type": "string", "semantic_type": "full_name"},
        ]
    }
)


def chunks(count: int, rows: int) -> list[pa.Table]:
    return [
        generate_chunk(SCHEMA, rows=rows, seed=5, chunk_index=i, row_offset=i * rows)
        for i in range(count)
    ]


def test_chunked_stats_equal_pyarrow_over_the_whole_table() -> None:
    parts = chunks(4, 2_500)
    stats = ColumnStats(parts[0].schema, SCHEMA.unique_columns)
    for part in parts:
        stats.update(part, table_keys(part))
    result = stats.result()
    table = pa.concat_tables(parts)
    for name in table.column_names:
        column = table.column(name)
        assert result[name]["nulls"] == column.null_count, name
        assert result[name]["distinct"] == pc.count_distinct(column).as_py(), name
        assert "distinct_estimated" not in result[name]
    for name in ("amount", "qty"):
        bounds = pc.min_max(table.column(name)).as_py()
        assert (result[name]["min"], result[name]["max"]) == (bounds["min"], bounds["max"])
        assert result[name]["mean"] == pytest.approx(pc.mean(table.column(name)).as_py())
    when = pc.min_max(table.column("when")).as_py()
    assert result["when"]["min"] == str(when["min"]) and result["when"]["max"] == str(when["max"])
    flag = table.column("flag")
    assert result["flag"]["true_share"] == pytest.approx(pc.mean(pc.cast(flag, "float64")).as_py())
    lengths = pc.mean(pc.utf8_length(table.column("name"))).as_py()
    assert result["name"]["mean_length"] == pytest.approx(lengths)
    assert result["id"]["distinct"] == 10_000  # unique: exact by construction


def test_distinct_counts_are_exact_to_the_limit_then_estimated_within_three_percent() -> None:
    rng = np.random.default_rng(11)
    for true in (10, 5_000, 20_000, 300_000):
        keys = rng.integers(0, 2**63, true, dtype=np.int64).view(np.uint64)
        counter = DistinctCounter(limit=10_000)
        for part in np.array_split(np.concatenate([keys, keys[: true // 3]]), 7):
            counter.add(part)  # a third of the keys twice: they count once
        if true <= 10_000:
            assert counter.exact and counter.count() == true
        else:
            assert not counter.exact
            assert counter.count() == pytest.approx(true, rel=0.03)
    small = DistinctCounter(limit=0)  # estimated from the start: linear counting when small
    small.add(np.arange(1_000, dtype=np.uint64))
    assert small.count() == pytest.approx(1_000, rel=0.03)


def test_a_column_past_the_limit_is_flagged_as_estimated() -> None:
    part = chunks(1, 3_000)[0]
    stats = ColumnStats(part.schema)
    for column in stats.columns:
        column.distinct.limit = 1_000
    stats.update(part, table_keys(part))
    result = stats.result()
    assert result["name"]["distinct_estimated"] is True
    assert result["name"]["distinct"] == pytest.approx(
        pc.count_distinct(part.column("name")).as_py(), rel=0.03
    )
    assert "distinct_estimated" not in result["kind"] and result["kind"]["distinct"] == 3


def test_the_job_files_read_back_equal_and_only_few_valued_columns_use_a_dictionary(
    tmp_path,
) -> None:
    import io

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from synth_pipelines.core.storage.object_store import LocalObjectStore
    from synth_pipelines.core.tabular.jobs import JobParams
    from synth_pipelines.core.tabular.runner import run_tabular_job

    store = LocalObjectStore(tmp_path)
    params = JobParams(
        total_rows=20_000, chunk_size=5_000, max_workers=1, dedup_threshold=1.0, seed=3
    )
    result = run_tabular_job(SCHEMA, params, store=store, key_prefix="files")
    with store.open_reader(result.outputs["parquet"]) as reader:
        data = reader.read()
    parquet = pq.read_table(io.BytesIO(data))
    with store.open_reader(result.outputs["csv"]) as reader:
        csv = pacsv.read_csv(io.BytesIO(reader.read()))
    # The CSV's timestamps are written as text ("...Z") and read back as the same UTC instants.
    assert csv.schema.field("when").type == pa.timestamp("ns", tz="UTC")
    assert csv.column("when").cast(pa.timestamp("us", tz="UTC")).equals(parquet.column("when"))
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0)
    encodings = {
        metadata.column(i).path_in_schema: metadata.column(i).encodings
        for i in range(metadata.num_columns)
    }
    assert "RLE_DICTIONARY" in encodings["kind"] and "RLE_DICTIONARY" in encodings["qty"]
    assert "RLE_DICTIONARY" not in encodings["id"] and "RLE_DICTIONARY" not in encodings["name"]
