r"""Vectorised regex sampler: values for a string column's `pattern`.

The pattern is parsed with `re._parser` and compiled into a generator of whole columns:
literals, character classes, \d \w \s and `.` (printable ASCII), groups, alternation and
quantifiers (`*` → 0..8, `+` → 1..8, `{n,}` → n..n+8 repetitions). ASCII runs stay (rows, width)
byte matrices until they meet ragged or non-ASCII parts. Anchors at the ends are accepted and
ignored; lookarounds, backreferences and conditional groups are not supported. Each compiled
sampler is probed once against `re.fullmatch`; a pattern it cannot sample reliably is a
SchemaError (`sample_pattern`), so `check_schema` rejects it before any generation.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synth_pipelines.core.tabular.arrow_strings import fixed_width, join, ragged
from synth_pipelines.core.tabular.schema import Column, SchemaError

__all__ = ["sample_pattern", "to_arrow"]

_UNBOUNDED_REPEAT = 8  # `*` → 0..8, `+` → 1..8, `{n,}` → n..n+8
_MAX_ALPHABET = 1 << 16
_PRINTABLE = [chr(c) for c in range(32, 127)]

_Part = np.ndarray | pa.Array  # a (rows, width) uint8 matrix of fixed-width bytes, or arrow
_Gen = Callable[[np.random.Generator, int], _Part]


class _Unsupported(Exception):
    pass


def _category_chars(category: Any) -> set[str]:
    digits = set("0123456789")
    word = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
    space = {" "}
    universe = set(_PRINTABLE)
    table = {
        sre_c.CATEGORY_DIGIT: digits,
        sre_c.CATEGORY_NOT_DIGIT: universe - digits,
        sre_c.CATEGORY_WORD: word,
        sre_c.CATEGORY_NOT_WORD: universe - word,
        sre_c.CATEGORY_SPACE: space,
        sre_c.CATEGORY_NOT_SPACE: universe - {" "},
    }
    if category not in table:
        raise _Unsupported(f"character category {category}")
    return table[category]


def _class_chars(items: list[tuple[Any, Any]]) -> list[str]:
    negate = False
    chars: set[str] = set()
    for op, arg in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            chars.add(chr(arg))
        elif op is sre_c.RANGE:
            low, high = arg
            if high - low >= _MAX_ALPHABET:
                high = low + _MAX_ALPHABET - 1
            chars.update(chr(c) for c in range(low, high + 1))
        elif op is sre_c.CATEGORY:
            chars |= _category_chars(arg)
        else:
            raise _Unsupported(f"{op} inside a character class")
    if negate:
        chars = set(_PRINTABLE) - chars
    return sorted(chars)


def _char_gen(alphabet: list[str], count: tuple[int, int] = (1, 1)) -> _Gen:
    """`count` characters each drawn from `alphabet` (a fixed matrix when ASCII and fixed)."""
    if not alphabet:
        raise _Unsupported("a character class that matches nothing printable")
    low, high = count
    if all(ord(c) < 128 for c in alphabet):
        table = np.frombuffer("".join(alphabet).encode(), dtype=np.uint8)

        def ascii_gen(rng: np.random.Generator, n: int) -> _Part:
            matrix = table[rng.integers(0, table.size, (n, high))]
            if low == high:
                return matrix
            return ragged(matrix, rng.integers(low, high + 1, n))

        return ascii_gen
    letters = pa.array(alphabet, pa.string())

    def one(rng: np.random.Generator, n: int) -> _Part:
        return letters.take(rng.integers(0, len(letters), n))

    return _repeat_gen(one, low, high) if count != (1, 1) else one


def to_arrow(part: _Part) -> pa.Array:
    return fixed_width(part) if isinstance(part, np.ndarray) else part


def _seq_gen(gens: list[_Gen]) -> _Gen:
    def gen(rng: np.random.Generator, n: int) -> _Part:
        parts: list[_Part] = []
        for g in gens:
            part = g(rng, n)
            if isinstance(part, np.ndarray) and parts and isinstance(parts[-1], np.ndarray):
                parts[-1] = np.hstack([parts[-1], part])
            else:
                parts.append(part)
        if not parts:
            return np.zeros((n, 0), dtype=np.uint8)
        if len(parts) == 1:
            return parts[0]
        return join(*[to_arrow(p) for p in parts])

    return gen


def _repeat_gen(sub: _Gen, low: int, high: int) -> _Gen:
    def gen(rng: np.random.Generator, n: int) -> _Part:
        counts = rng.integers(low, high + 1, n) if high > low else None
        parts: list[_Part] = []
        for j in range(high):
            part = sub(rng, n)
            if j >= low and counts is not None:
                part = pc.if_else(pa.array(j < counts), to_arrow(part), pa.scalar(""))
            if isinstance(part, np.ndarray) and parts and isinstance(parts[-1], np.ndarray):
                parts[-1] = np.hstack([parts[-1], part])
            else:
                parts.append(part)
        if not parts:
            return np.zeros((n, 0), dtype=np.uint8)
        return parts[0] if len(parts) == 1 else join(*[to_arrow(p) for p in parts])

    return gen


def _branch_gen(branches: list[_Gen]) -> _Gen:
    def gen(rng: np.random.Generator, n: int) -> _Part:
        which = pa.array(rng.integers(0, len(branches), n).astype(np.int8))
        return pc.choose(which, *[to_arrow(b(rng, n)) for b in branches])

    return gen


def _compile_items(items: Any) -> _Gen:
    gens: list[_Gen] = []
    for op, arg in items:
        if op is sre_c.LITERAL:
            raw = np.frombuffer(chr(arg).encode(), dtype=np.uint8)
            gens.append(lambda rng, n, raw=raw: np.broadcast_to(raw, (n, raw.size)))
        elif op is sre_c.NOT_LITERAL:
            gens.append(_char_gen([c for c in _PRINTABLE if ord(c) != arg]))
        elif op is sre_c.ANY:
            gens.append(_char_gen(_PRINTABLE))
        elif op is sre_c.IN:
            gens.append(_char_gen(_class_chars(arg)))
        elif op is sre_c.CATEGORY:
            gens.append(_char_gen(sorted(_category_chars(arg))))
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            low, high, sub = arg
            if high is sre_c.MAXREPEAT:
                high = low + _UNBOUNDED_REPEAT
            single = list(sub)
            if len(single) == 1 and single[0][0] in (sre_c.IN, sre_c.ANY, sre_c.CATEGORY):
                sop, sarg = single[0]
                alphabet = (
                    _PRINTABLE
                    if sop is sre_c.ANY
                    else _class_chars(sarg)
                    if sop is sre_c.IN
                    else sorted(_category_chars(sarg))
                )
                gens.append(_char_gen(alphabet, (low, high)))
            else:
                gens.append(_repeat_gen(_compile_items(sub), low, high))
        elif op is sre_c.SUBPATTERN:
            gens.append(_compile_items(arg[-1]))
        elif op is sre_c.BRANCH:
            gens.append(_branch_gen([_compile_items(b) for b in arg[1]]))
        elif op is sre_c.AT:
            if arg not in (
                sre_c.AT_BEGINNING,
                sre_c.AT_BEGINNING_STRING,
                sre_c.AT_END,
                sre_c.AT_END_STRING,
            ):
                raise _Unsupported(f"the anchor {arg}")
        else:
            names = {
                sre_c.ASSERT: "lookahead/lookbehind",
                sre_c.ASSERT_NOT: "negative lookaround",
                sre_c.GROUPREF: "backreference",
                sre_c.GROUPREF_EXISTS: "conditional group",
            }
            raise _Unsupported(names.get(op, str(op)))
    return _seq_gen(gens)


@functools.lru_cache(maxsize=256)
def _pattern_sampler(pattern: str) -> _Gen:
    """A vectorised sampler for `pattern`; _Unsupported for what it cannot generate."""
    sampler = _compile_items(sre_parse.parse(pattern))
    probe = to_arrow(sampler(np.random.default_rng(0), 64)).to_pylist()
    compiled = re.compile(pattern)
    if not all(compiled.fullmatch(v) for v in probe):
        raise _Unsupported("constructs whose matches cannot be sampled reliably")
    return sampler


def sample_pattern(column: Column) -> _Gen:
    try:
        return _pattern_sampler(column.pattern or "")
    except _Unsupported as exc:
        raise SchemaError(
            f"columns.{column.name}.pattern",
            f"column {column.name!r}: the pattern {column.pattern!r} uses {exc}, which the "
            "generator does not support; use literals, classes, groups, | and quantifiers",
        ) from None
    except RecursionError:
        raise SchemaError(
            f"columns.{column.name}.pattern", f"column {column.name!r}: pattern too deep"
        ) from None
