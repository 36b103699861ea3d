"""`ImageRecord`, what every stage of an image set reads and writes, and the record files that
keep a set between stages: Parquet with the encoded image bytes, written and read a row group at
a time so that memory stays flat with the set's size.

Columns of a record file: `key` (string), `image` (binary, the encoded bytes as stored), `label`
(string, nullable), `metadata` (string, JSON of the record's metadata), `boxes` (string, JSON
list of [x, y, w, h] face boxes in pixels).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

Box = tuple[int, int, int, int]  # x, y, width, height in pixels

RECORD_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("image", pa.binary()),
        ("label", pa.string()),
        ("metadata", pa.string()),
        ("boxes", pa.string()),
    ]
)
ROW_GROUP_BYTES = 64 * 1024 * 1024  # a row group is flushed once its images pass this size


@dataclass(frozen=True)
class ImageRecord:
    """One image of a set.

    `key`: its stable relative name inside the set, posix, no leading slash ("cat/0001.jpg").
    `data`: the encoded image exactly as stored (JPEG, PNG, …).
    `label`: its class when the source has one (the imagefolder subfolder), else None.
    `metadata`: per-image fields, JSON-serialisable (a synthetic image's seed, backend, ψ).
    `boxes`: face boxes, for COCO exports.
    """

    key: str
    data: bytes
    label: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    boxes: tuple[Box, ...] = ()


def _batch(rows: list[ImageRecord]) -> pa.RecordBatch:
    return pa.record_batch(
        [
            pa.array([r.key for r in rows], pa.string()),
            pa.array([r.data for r in rows], pa.binary()),
            pa.array([r.label for r in rows], pa.string()),
            pa.array([json.dumps(dict(r.metadata), sort_keys=True) for r in rows], pa.string()),
            pa.array([json.dumps([list(b) for b in r.boxes]) for r in rows], pa.string()),
        ],
        schema=RECORD_SCHEMA,
    )


def write_records(
    records: Iterable[ImageRecord], path: Path, row_group_bytes: int = ROW_GROUP_BYTES
) -> int:
    """Write `records` to the record file `path` (through a temporary name, renamed once
    complete, so that a reader never sees a partial file). Returns the count written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    count = 0
    pending: list[ImageRecord] = []
    size = 0
    try:
        with pq.ParquetWriter(partial, RECORD_SCHEMA, compression="none") as writer:
            for record in records:
                pending.append(record)
                size += len(record.data)
                count += 1
                if size >= row_group_bytes:
                    writer.write_batch(_batch(pending))
                    pending, size = [], 0
            if pending or count == 0:
                writer.write_batch(_batch(pending))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return count


def read_records(path: Path, batch_size: int = 256) -> Iterator[ImageRecord]:
    """The records of the record file `path`, in order, `batch_size` at a time from disk."""
    with pq.ParquetFile(path) as file:
        for batch in file.iter_batches(batch_size=batch_size):
            columns = batch.to_pydict()
            for key, data, label, metadata, boxes in zip(
                columns["key"],
                columns["image"],
                columns["label"],
                columns["metadata"],
                columns["boxes"],
                strict=True,
            ):
                yield ImageRecord(
                    key=key,
                    data=data,
                    label=label,
                    metadata=json.loads(metadata) if metadata else {},
                    boxes=tuple(tuple(b) for b in json.loads(boxes)) if boxes else (),
                )


def count_records(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows
