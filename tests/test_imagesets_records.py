"""Record files: what goes in comes back, in order, and a file appears only complete."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from synth_pipelines.core.imagesets.records import (
    ImageRecord,
    count_records,
    read_records,
    write_records,
)


def _png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(out, format="PNG")
    return out.getvalue()


def test_round_trip_in_row_groups(tmp_path) -> None:
    records = [
        ImageRecord(f"a/{i:03d}.png", _png((i, 0, 0)), label="a" if i % 2 else None,
                    metadata={"seed": i, "psi": 0.7}, boxes=((1, 2, 3, 4),) if i % 3 else ())
        for i in range(50)
    ]  # fmt: skip
    path = tmp_path / "set" / "records.parquet"
    assert write_records(iter(records), path, row_group_bytes=500) == 50
    assert count_records(path) == 50
    assert list(read_records(path, batch_size=7)) == records
    import pyarrow.parquet as pq

    assert pq.ParquetFile(path).metadata.num_row_groups > 1


def test_a_failed_write_leaves_no_file(tmp_path) -> None:
    def broken():
        yield ImageRecord("x.png", _png((1, 2, 3)))
        raise RuntimeError("the generator failed")

    path = tmp_path / "records.parquet"
    with pytest.raises(RuntimeError, match="generator failed"):
        write_records(broken(), path)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_set(tmp_path) -> None:
    path = tmp_path / "records.parquet"
    assert write_records([], path) == 0
    assert list(read_records(path)) == []
