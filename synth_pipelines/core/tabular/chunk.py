"""The per-chunk state the tabular generator fills column by column.

A `Chunk` holds a chunk's row count, the global index of its first row (`row_offset`; chunk `i`
of a table starts at `i * chunk_size`), the columns filled so far (a `depends_on` column reads
its source's values) and, for name columns, the vocabulary indices an email or username derives
from. `column_error` builds the SchemaError for one column's attribute.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from synth_pipelines.core.tabular.schema import Column, SchemaError

__all__ = ["Chunk", "Fill", "column_error"]


@dataclass
class Chunk:
    rows: int
    row_offset: int
    values: dict[str, pa.Array] = field(default_factory=dict)
    # For name columns: indices into the first/last vocabularies (emails derive from them).
    name_parts: dict[str, tuple[np.ndarray | None, np.ndarray | None]] = field(default_factory=dict)
    # For series columns (step_seconds with series_of): how many entities the series cycles.
    series_entities: dict[str, int] = field(default_factory=dict)

    @functools.cached_property
    def global_index(self) -> np.ndarray:
        """1-based global row numbers of this chunk."""
        return np.arange(self.row_offset + 1, self.row_offset + self.rows + 1, dtype=np.int64)


Fill = Callable[[Column, np.random.Generator, Chunk], pa.Array]


def column_error(column: Column, attribute: str | None, message: str) -> SchemaError:
    where = f"columns.{column.name}" + (f".{attribute}" if attribute else "")
    return SchemaError(where, f"column {column.name!r}: {message}")
