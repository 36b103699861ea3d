"""Non-text values for the tabular generator: numbers, booleans, categories, dates, uuids.

- numbers: `distribution` uniform (default; integers 0..1,000,000, floats 0..1000 when unset),
  normal(mean, std), lognormal(mean, std of the *underlying normal*: defaults 3 and 1, median
  e³ ≈ 20, always positive), poisson(mean); normal/lognormal/poisson clip to min/max when set.
  Floats are rounded only when `decimals` is set.
- `id` integers: `min (default 1) + global row index` (sequential), unless the column is a
  non-unique reference into a bounded range (a foreign key): then drawn from the range.
- date/datetime: uniform between min and max, by default the two years before 2026-01-01 (a
  fixed reference, not now(), for reproducibility). Naive datetimes are read as UTC.
- `unique`: bounded kinds (integer, date, datetime, boolean, category) map the global row index
  through an affine bijection of the value range (seeded by `seed` and the column), then shuffle
  within the chunk: distinct across all chunks of a job while global row indices stay below the
  range size. Floats and uuids are random and left to the job's dedup.
- uuid: canonical lowercase uuid4 strings.
- `group_size` ids: runs of least..most rows per id from min (1, 1, 1, 2, 2, 3, …), run sizes
  drawn from the seed and the column name alone, so that the chunks of a job agree.
- series: a date/datetime with `step_seconds` is `min + step * position` — with `series_of`,
  rows cycle through the entity column's values (row g is entity `min + g mod n`, at position
  `g div n`), so each entity gets a regular series.
"""

from __future__ import annotations

import math
import zlib
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa

from synth_pipelines.core.tabular.arrow_strings import fixed_width
from synth_pipelines.core.tabular.chunk import Chunk, column_error
from synth_pipelines.core.tabular.schema import Column

__all__ = [
    "DATETIME",
    "REFERENCE_DATE",
    "fill_boolean",
    "fill_category",
    "fill_float",
    "fill_integer",
    "fill_temporal",
    "fill_uuid",
]

DATETIME = pa.timestamp("us", tz="UTC")
REFERENCE_DATE = date(2026, 1, 1)
_DEFAULT_SPAN_DAYS = 731  # two years (2024 is a leap year)
_INT_RANGE = (0, 1_000_000)
_FLOAT_RANGE = (0.0, 1000.0)
_UNIQUE_INT_SPAN = 2**31 - 1  # a unique integer column without max spans this many values


def _affine(column: Column, seed: int, size: int) -> tuple[int, int]:
    """A multiplier coprime with `size` and an offset: x ↦ (a·x + b) mod size is a bijection."""
    if size <= 1:
        return 1, 0
    tag = int.from_bytes(column.name.encode()[:16].ljust(16, b"\0"), "little")
    rng = np.random.default_rng([seed, 0x5EED, tag])
    cap = min(size, 2**31)
    a = int(rng.integers(1, cap)) if cap > 1 else 1
    while math.gcd(a, size) != 1:
        a = a + 1 if a + 1 < cap else 1
    return a, int(rng.integers(0, size))


def _unique_codes(
    column: Column, rng: np.random.Generator, chunk: Chunk, size: int, seed: int
) -> np.ndarray:
    """Distinct codes in [0, size) across chunks: an affine bijection of the global row index,
    shuffled within the chunk."""
    size = min(size, 2**62)  # keeps (a·x mod size) + b inside uint64; still distinct
    a, b = _affine(column, seed, size)
    index = (chunk.global_index - 1).astype(np.uint64) % np.uint64(size)
    codes = (index * np.uint64(a)) % np.uint64(size)
    codes = (codes + np.uint64(b)) % np.uint64(size)
    return rng.permutation(codes.astype(np.int64))


def _int_bounds(column: Column) -> tuple[int, int]:
    low, high = column.bound("min"), column.bound("max")
    span = _UNIQUE_INT_SPAN if column.unique else _INT_RANGE[1] - _INT_RANGE[0]
    if low is None and high is None:
        return _INT_RANGE[0], _INT_RANGE[0] + span
    if low is None:
        return int(high) - span if int(high) < 0 else min(0, int(high)), int(high)
    if high is None:
        return int(low), int(low) + span
    return int(low), int(high)


def _float_bounds(column: Column) -> tuple[float, float]:
    low, high = column.bound("min"), column.bound("max")
    width = _FLOAT_RANGE[1] - _FLOAT_RANGE[0]
    if low is None and high is None:
        return _FLOAT_RANGE
    if low is None:
        return (float(high) - width if float(high) <= 0 else 0.0), float(high)
    if high is None:
        return float(low), float(low) + width
    return float(low), float(high)


def _draw_numbers(column: Column, rng: np.random.Generator, n: int, low: float, high: float):
    """Float draws by `distribution`; clipped to the explicit bounds."""
    dist = column.distribution or "uniform"
    if dist == "uniform":
        return rng.uniform(low, high, n) if column.type == "float" else None
    if dist == "normal":
        mean = column.mean if column.mean is not None else (low + high) / 2
        std = column.std if column.std is not None else max((high - low) / 6, 1e-9)
        out = rng.normal(mean, std, n)
    elif dist == "lognormal":
        mean = column.mean if column.mean is not None else 3.0
        std = column.std if column.std is not None else 1.0
        out = rng.lognormal(mean, std, n)
    else:
        explicit = column.min is not None and column.max is not None
        lam = column.mean if column.mean is not None else (low + high) / 2 if explicit else 10.0
        out = rng.poisson(max(lam, 0.0), n).astype(np.float64)
    lo, hi = column.bound("min"), column.bound("max")
    if lo is not None or hi is not None:
        out = np.clip(out, lo, hi)
    return out


_RUN_BLOCK = 65_536  # run sizes drawn per block, so that a chunk far into a job costs no memory


def _group_ids(column: Column, chunk: Chunk, seed: int) -> np.ndarray:
    """Ids in runs of group_size rows: run k has a size drawn (from seed, the column and k's
    block alone, so that every chunk agrees) between the bounds; row g belongs to the run
    covering it. The blocks before the chunk are summed, not kept: memory is one block and
    the chunk, wherever the chunk starts."""
    least, most = column.group_size or (1, 1)
    name = zlib.crc32(column.name.encode())
    first_row, end = chunk.row_offset, chunk.row_offset + chunk.rows
    block, rows_before = 0, 0  # rows covered by the blocks before `block`
    runs = np.empty(chunk.rows, np.int64)
    filled = 0
    while filled < chunk.rows:
        sizes = np.random.default_rng([seed, name, block]).integers(
            least, most, _RUN_BLOCK, endpoint=True
        )
        block_rows = int(sizes.sum())
        if rows_before + block_rows > first_row:
            stop = min(end, rows_before + block_rows)
            rows = np.arange(max(first_row, rows_before), stop, dtype=np.int64) - rows_before
            local = np.searchsorted(np.cumsum(sizes), rows, side="right")
            runs[filled : filled + len(rows)] = block * _RUN_BLOCK + local
            filled += len(rows)
        rows_before += block_rows
        block += 1
    ids = (int(column.min) if column.min is not None else 1) + runs
    # With a max (300 students, 3-8 exams each) the ids stop there: the last takes the rows
    # left over.
    return ids if column.max is None else np.minimum(ids, int(column.max))


def fill_integer(column: Column, rng: np.random.Generator, chunk: Chunk, seed: int) -> pa.Array:
    n = chunk.rows
    if column.group_size is not None:
        return pa.array(_group_ids(column, chunk, seed), pa.int64())
    # An id is sequential (a key), unless it is a non-unique reference into a bounded range
    # (a foreign key like a transaction's user_id): then it is drawn from the range.
    if column.semantic_type == "id" and (column.unique or column.max is None):
        start = int(column.min) if column.min is not None else 1
        values = chunk.global_index - 1 + start
        if column.max is not None and n and values[-1] > int(column.max):
            raise column_error(column, "max", f"the sequential id passes max ({column.max})")
        return pa.array(values, pa.int64())
    low, high = _int_bounds(column)
    if column.unique:
        return pa.array(low + _unique_codes(column, rng, chunk, high - low + 1, seed), pa.int64())
    drawn = _draw_numbers(column, rng, n, low, high)
    if drawn is None:
        return pa.array(rng.integers(low, high, n, endpoint=True), pa.int64())
    drawn = np.clip(np.rint(drawn), -(2.0**62), 2.0**62)
    return pa.array(drawn.astype(np.int64), pa.int64())


def fill_float(column: Column, rng: np.random.Generator, chunk: Chunk, seed: int) -> pa.Array:
    low, high = _float_bounds(column)
    values = _draw_numbers(column, rng, chunk.rows, low, high)
    if column.decimals is not None:
        values = np.round(values, column.decimals)
        lo, hi = column.bound("min"), column.bound("max")
        if lo is not None or hi is not None:  # rounding may step just outside a bound
            values = np.clip(values, lo, hi)
    return pa.array(values, pa.float64())


def fill_boolean(column: Column, rng: np.random.Generator, chunk: Chunk, seed: int) -> pa.Array:
    if column.unique:
        return pa.array(_unique_codes(column, rng, chunk, 2, seed).astype(bool))
    return pa.array(rng.random(chunk.rows) < 0.5)


def fill_category(column: Column, rng: np.random.Generator, chunk: Chunk, seed: int) -> pa.Array:
    cats = pa.array(column.categories or [], pa.string())
    if column.unique:
        return cats.take(_unique_codes(column, rng, chunk, len(cats), seed))
    if column.weights is None:
        return cats.take(rng.integers(0, len(cats), chunk.rows))
    cum = np.cumsum(np.asarray(column.weights, dtype=np.float64))
    index = np.searchsorted(cum / cum[-1], rng.random(chunk.rows), side="right")
    return cats.take(np.minimum(index, len(cats) - 1))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _temporal_bounds(column: Column) -> tuple[int, int]:
    """Inclusive bounds: days since epoch (date) or microseconds since epoch (datetime)."""
    low, high = column.bound("min"), column.bound("max")
    epoch = date(1970, 1, 1)
    if column.type == "date":
        ref_hi = (REFERENCE_DATE - epoch).days - 1
        hi = (high - epoch).days if isinstance(high, date) else None
        lo = (low - epoch).days if isinstance(low, date) else None
        span = _DEFAULT_SPAN_DAYS - 1
    else:
        ref_hi = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) * 10**6
        to_us = lambda v: round(_utc(v).timestamp() * 10**6)  # noqa: E731
        hi = to_us(high) if isinstance(high, datetime) else None
        lo = to_us(low) if isinstance(low, datetime) else None
        span = _DEFAULT_SPAN_DAYS * 86_400 * 10**6
    if hi is None:
        hi = max(ref_hi, lo + span) if lo is not None and lo > ref_hi else ref_hi
    if lo is None:
        lo = hi - span
    return lo, hi


def series_position(chunk: Chunk, entities: int | None) -> np.ndarray:
    """0-based position of each row in its series: rows cycle through `entities` (each row
    of a cycle is another entity's next reading), or one series when None."""
    index = chunk.global_index - 1
    return index // entities if entities else index


def fill_temporal(column: Column, rng: np.random.Generator, chunk: Chunk, seed: int) -> pa.Array:
    lo, hi = _temporal_bounds(column)
    if column.step_seconds is not None:
        entities = chunk.series_entities.get(column.name)
        step = column.step_seconds / 86_400 if column.type == "date" else column.step_seconds * 1e6
        values = lo + np.rint(series_position(chunk, entities) * step).astype(np.int64)
    elif column.unique:
        values = lo + _unique_codes(column, rng, chunk, hi - lo + 1, seed)
    else:
        values = rng.integers(lo, hi, chunk.rows, endpoint=True)
    if column.type == "date":
        return pa.array(values.astype(np.int32), pa.date32())
    return pa.array(values.astype(np.int64), DATETIME)


def fill_uuid(column: Column, rng: np.random.Generator, chunk: Chunk, seed: int) -> pa.Array:
    n = chunk.rows
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    hexchars = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    hexed = np.empty((n, 32), dtype=np.uint8)
    hexed[:, 0::2] = hexchars[raw >> 4]
    hexed[:, 1::2] = hexchars[raw & 0x0F]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for start, stop, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        out[:, at : at + stop - start] = hexed[:, start:stop]
    return fixed_width(out)
