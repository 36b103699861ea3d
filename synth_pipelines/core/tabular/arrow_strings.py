"""Arrow string helpers for the tabular generator.

Fixed-width text (phones, postcodes, uuids, IBANs, pattern characters) is built as a
(rows, width) uint8 matrix of UTF-8 bytes and handed to arrow as one buffer, without a Python
string per value; the rest is row-wise concatenation of arrow arrays and constant strings.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["const", "digits", "fixed_width", "join", "numbers", "ragged"]


def fixed_width(matrix: np.ndarray) -> pa.Array:
    """One string per row of a (rows, width) uint8 matrix of UTF-8 bytes."""
    n, width = matrix.shape
    data = np.ascontiguousarray(matrix, dtype=np.uint8)
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(width)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def ragged(matrix: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """Row i is the first lengths[i] bytes of matrix row i."""
    n, width = matrix.shape
    data = np.ascontiguousarray(matrix[np.arange(width) < lengths[:, None]], dtype=np.uint8)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def const(text: str, n: int) -> pa.Array:
    raw = np.frombuffer(text.encode(), dtype=np.uint8)
    return fixed_width(np.broadcast_to(raw, (n, raw.size)))


def join(*parts: pa.Array | str) -> pa.Array:
    """Row-wise concatenation of arrays and constant strings."""
    args = [pa.scalar(p, pa.string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, "")


def digits(rng: np.random.Generator, n: int, width: int, first_low: int = 0) -> np.ndarray:
    """(n, width) matrix of ASCII digits; the first digit is at least `first_low`."""
    out = rng.integers(48, 58, (n, width), dtype=np.uint8)
    if first_low and width:
        out[:, 0] = rng.integers(48 + first_low, 58, n, dtype=np.uint8)
    return out


def numbers(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values, pa.int64()), pa.string())
