"""Exact deduplication of generated chunks (hashes of key columns); semantic dedup (text
embeddings) is in `semantic_dedup`.

Both are stateful across chunks: `filter(table)` returns the rows to keep and how many it removed,
judging each row against the rows already kept from this chunk and from earlier ones, in row order.

Exact dedup hashes values to 64 bits (integers, floats, booleans and temporals are kept exactly,
strings and other types hashed). Two different strings collide with probability ~2^-64 per pair:
~3e-8 for 1M distinct values, in which case a genuine row would be dropped as a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_NULL = np.uint64(0x6A09E667F3BCC909)
_ALL_BITS = np.uint64(0xFFFFFFFFFFFFFFFF)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective 64-bit mix, element-wise."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _mix_in_place(x: np.ndarray) -> np.ndarray:
    """`mix64` of `x`, written into `x` (no temporaries beyond the shifts)."""
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def _hash_bytes(arr: pa.Array) -> np.ndarray:
    """64-bit hash of each string/binary value: length-seeded, then mixed with each of its
    8-byte little-endian words in turn (the last one zero-padded).

    Values of one length (uuids, codes) are read as a (rows, words) matrix. Otherwise the words
    every value has in full are mixed for all rows at once, and only the rest by the shrinking
    set of values still long enough (kept in row order: the loads stay near each other)."""
    arr = arr.cast(pa.large_binary())
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    h = lengths.astype(np.uint64)
    h += _GOLDEN
    _mix_in_place(h)
    if not len(lengths):
        return h
    shortest, longest = int(lengths.min()), int(lengths.max())
    if shortest == longest:  # one length: the values lie back to back
        rows, width = len(lengths), -(-longest // 8)
        padded = np.zeros((rows, 8 * width), np.uint8)
        padded[:, :longest] = data[offsets[0] : offsets[0] + rows * longest].reshape(rows, -1)
        words = padded.view(np.uint64)
        for k in range(width):
            h ^= words[:, k]
            _mix_in_place(h)
        return h
    padded = np.zeros(len(data) + 8, np.uint8)
    padded[: len(data)] = data
    # Unaligned 8-byte loads at every byte offset (a strided view, no copy).
    words = np.ndarray((len(padded) - 7,), np.uint64, padded, 0, (1,))
    whole = shortest // 8  # words that every value has in full
    for k in range(whole):
        h ^= words[starts + 8 * k]
        _mix_in_place(h)
    active = np.nonzero(lengths > 8 * whole)[0]
    k = whole
    while active.size:
        remaining = lengths[active] - 8 * k
        w = words[starts[active] + 8 * k]
        # Keep the value's own bytes of its last word: a shift of 0 bits for a full word.
        w &= _ALL_BITS >> (8 * (8 - np.minimum(remaining, 8))).astype(np.uint64)
        mixed = h[active]
        mixed ^= w
        h[active] = _mix_in_place(mixed)
        active = active[remaining > 8]
        k += 1
    return h


def _value_keys(arr: pa.Array) -> np.ndarray:
    """One uint64 per value, equal for equal values (exact for numbers, hashed otherwise)."""
    kind = arr.type
    if pa.types.is_dictionary(kind):
        return _value_keys(arr.dictionary)[np.asarray(arr.indices.fill_null(0), np.int64)]
    if pa.types.is_null(kind):
        return np.zeros(len(arr), np.uint64)
    if pa.types.is_boolean(kind):
        return np.asarray(arr.fill_null(False), np.uint64)
    if pa.types.is_integer(kind):
        return np.asarray(arr.fill_null(0)).astype(np.int64, copy=False).view(np.uint64)
    if pa.types.is_floating(kind):
        values = np.asarray(arr.fill_null(0), np.float64) + 0.0  # -0.0 becomes 0.0
        values[np.isnan(values)] = np.nan  # one NaN bit pattern
        return values.view(np.uint64)
    if pa.types.is_temporal(kind) and kind.bit_width in (32, 64):
        ints = arr.view(pa.int64() if kind.bit_width == 64 else pa.int32())
        return np.asarray(ints.fill_null(0)).astype(np.int64, copy=False).view(np.uint64)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind):
        return _hash_bytes(arr)
    if pa.types.is_large_binary(kind) or pa.types.is_string_view(kind):
        return _hash_bytes(arr.cast(pa.large_binary()))
    if pa.types.is_decimal(kind) or pa.types.is_fixed_size_binary(kind):
        return _hash_bytes(arr.cast(pa.large_string()) if pa.types.is_decimal(kind) else arr)
    # Nested types (lists, structs, maps): hash their text form, slow but correct.
    return _hash_bytes(pa.array([repr(v) for v in arr.to_pylist()], pa.large_string()))


def column_keys(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(keys, valid): a uint64 per row, equal for equal values, and the non-null mask."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    chunks = [c for c in chunks if len(c)] or [pa.array([], column.type)]
    keys = np.concatenate([_value_keys(c) for c in chunks])
    valid = np.concatenate([np.asarray(c.is_valid(), bool) for c in chunks])
    return keys, valid


Keys = dict[str, tuple[np.ndarray, np.ndarray]]  # column name -> column_keys(column)


def table_keys(table: pa.Table, columns: Sequence[str] | None = None) -> Keys:
    """`column_keys` of each column of `table` (or of `columns`), by name."""
    return {name: column_keys(table.column(name)) for name in columns or table.column_names}


def row_keys(table: pa.Table, keys: Keys | None = None) -> np.ndarray:
    """A 64-bit hash of each whole row (columns taken by name, so their order does not matter;
    nulls are equal to each other). `keys`: the table's `table_keys`, when already computed."""
    keys = keys if keys is not None else table_keys(table)
    h = np.full(table.num_rows, _GOLDEN, np.uint64)
    for name in sorted(table.column_names):
        values, valid = keys[name]
        h = mix64((h * _M1) ^ np.where(valid, mix64(values), _NULL))
    return h


class SeenKeys:
    """A growing set of uint64 keys with vectorised membership."""

    def __init__(self, expected: int = 0) -> None:
        """`expected`: about how many keys it will hold (sized once for them: growing a 1M-key
        table step by step cost 2.5x the inserts themselves)."""
        try:  # pandas' C hash table: ~5x faster than a Python set and far smaller.
            from pandas._libs.hashtable import UInt64HashTable

            self._table: Any = UInt64HashTable(expected) if expected else UInt64HashTable()
        except ImportError:  # pragma: no cover - private API moved
            self._table = None
            self._set: set[int] = set()

    def __len__(self) -> int:
        return len(self._table) if self._table is not None else len(self._set)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        if self._table is not None:
            return self._table.lookup(np.ascontiguousarray(keys, np.uint64)) >= 0
        return np.fromiter(map(self._set.__contains__, keys.tolist()), bool, len(keys))

    def add(self, keys: np.ndarray) -> None:
        if self._table is not None:
            self._table.map_locations(np.ascontiguousarray(keys, np.uint64))
        else:
            self._set.update(keys.tolist())

    def add_new(self, keys: np.ndarray) -> np.ndarray:
        """Add `keys`; the distinct ones it did not hold before, in first-seen order."""
        if self._table is not None:
            return self._table.unique(np.ascontiguousarray(keys, np.uint64))
        new = pd.unique(keys[~self.contains(keys)])
        self._set.update(new.tolist())
        return new


def _first_owner(keys: np.ndarray) -> np.ndarray:
    """For each position, the position of the first occurrence of its key."""
    codes, uniques = pd.factorize(keys)
    first = np.empty(len(uniques), np.int64)
    positions = np.arange(len(keys), dtype=np.int64)
    first[codes[::-1]] = positions[::-1]  # the last write wins: the first occurrence
    return first[codes]


class ExactDeduplicator:
    """Drops rows whose key was seen before, in this chunk or an earlier one.

    With `key_columns` (a schema's unique columns), each column must stay unique on its own: a row
    is a duplicate when ANY of its key values belongs to an already kept row (greedy in row order;
    values of dropped rows are not reserved). Nulls never duplicate each other (SQL semantics).
    Without key columns, whole rows are compared (nulls equal).
    """

    _VECTOR_ROUNDS = 16  # greedy rounds before the (rare) sequential fallback

    def __init__(self, key_columns: Sequence[str] | None = None, expected_rows: int = 0) -> None:
        """`expected_rows`: about how many rows it will keep (its key sets are sized for them)."""
        self.key_columns = list(key_columns or [])
        self._seen = [SeenKeys(expected_rows) for _ in self.key_columns or [None]]
        self.rows_seen = 0
        self.rows_removed = 0

    def filter(self, table: pa.Table) -> tuple[pa.Table, int]:
        """The rows of `table` to keep, and how many were removed."""
        keep = self.keep(table)
        removed = int(table.num_rows - keep.sum())
        return (table if removed == 0 else table.filter(pa.array(keep))), removed

    def keep(self, table: pa.Table, keys: Keys | None = None) -> np.ndarray:
        """The mask of the rows of `table` to keep (they count as seen from now on); `keys`: the
        table's `table_keys` when already computed (they are not computed again)."""
        if self.key_columns:
            missing = [c for c in self.key_columns if c not in table.column_names]
            if missing:
                raise KeyError(f"key columns {missing} not in table columns {table.column_names}")
            pairs = [
                keys[c] if keys is not None else column_keys(table.column(c))
                for c in self.key_columns
            ]
        else:
            pairs = [(row_keys(table, keys), np.ones(table.num_rows, bool))]
        keep = self._greedy_keep(pairs)
        for (values, valid), seen in zip(pairs, self._seen, strict=True):
            seen.add(values[keep & valid])
        self.rows_seen += table.num_rows
        self.rows_removed += int(table.num_rows - keep.sum())
        return keep

    def _greedy_keep(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Keep a row iff none of its valid keys belongs to an earlier kept row (or history)."""
        n = len(pairs[0][0]) if pairs else 0
        undecided = np.ones(n, bool)
        kept = np.zeros(n, bool)
        for (keys, valid), seen in zip(pairs, self._seen, strict=True):
            undecided &= ~(valid & seen.contains(keys))
        for _ in range(self._VECTOR_ROUNDS):
            if not undecided.any():
                return kept
            # Among kept and undecided rows: a key whose first holder is kept blocks the others;
            # a row first for every key is kept; the rest wait for the next round.
            candidates = np.nonzero(kept | undecided)[0]
            first_everywhere = np.ones(len(candidates), bool)
            blocked = np.zeros(len(candidates), bool)
            for keys, valid in pairs:
                has = valid[candidates]
                idx = candidates[has]
                owner = idx[_first_owner(keys[idx])]
                is_first = owner == idx
                first_everywhere[has] &= is_first
                blocked[has] |= ~is_first & kept[owner]
            undecided_c = undecided[candidates]
            newly_kept = candidates[undecided_c & first_everywhere]
            dropped = candidates[undecided_c & blocked]
            kept[newly_kept] = True
            undecided[newly_kept] = False
            undecided[dropped] = False
        # Long chains of overlapping keys: finish sequentially.
        held = [set(keys[kept & valid].tolist()) for keys, valid in pairs]
        for i in np.nonzero(undecided)[0]:
            values = [(int(k[i]) if v[i] else None) for k, v in pairs]
            if any(x is not None and x in h for x, h in zip(values, held, strict=True)):
                continue
            kept[i] = True
            for x, h in zip(values, held, strict=True):
                if x is not None:
                    h.add(x)
        return kept
