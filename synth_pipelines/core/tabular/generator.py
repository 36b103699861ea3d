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

Values:
- Vocabularies (names, cities, countries, codes, companies, jobs, streets, domains, lorem words)
  are Faker's en_US provider data, loaded once per process; names keep Faker's frequencies.
- `semantic_type` drives strings; `pattern` (a regex) wins over it. Text semantics need a string
  column (a category column uses its categories; a uuid column is always uuid4).
- `id`: integer → `min (default 1) + global row index`; string → a prefix from the column name +
  zero-padded sequence ("user_id" → "USR-00000001"); uuid → uuid4.
- numbers: `distribution` uniform (default; integers 0..1,000,000, floats 0..1000 when unset),
  normal(mean, std), lognormal(mean, std of the *underlying normal*: defaults 3 and 1, median
  e³ ≈ 20, always positive), poisson(mean); normal/lognormal/poisson clip to min/max when set.
  Floats are rounded only when `decimals` is set.
- date/datetime: uniform between min and max, by default the two years before 2026-01-01 (a
  fixed reference, not now(), for reproducibility). Naive datetimes are read as UTC.
- `nullable`: exactly `round(rows * nullable)` values per chunk are null (positions random).
- `unique`: bounded kinds (integer, date, datetime, boolean, category) map the global row index
  through an affine bijection of the value range (seeded by `seed` and the column), then shuffle
  within the chunk: distinct across all chunks of a job while global row indices stay below the
  range size. Unique text that is not unique by nature (names, words, phone…) gets the global
  row number appended ("Jane Doe 17"; emails/usernames before the "@": "jane.doe17@…").
  Pattern columns, floats, uuids and IBANs are random and left to the job's dedup.
- `depends_on`: only email, username, domain and url derive from another (string) column —
  email "jane.doe42@gmail.com" from the same row's "Jane Doe"; anything else is a SchemaError.
- `source == "llm"` columns are all null here: an LLM backend fills them in afterwards (a
  column derived from an LLM column falls back to random names).

`check_schema(schema)` raises the same SchemaError generation would, without generating.
"""

from __future__ import annotations

import functools
import importlib
import math
import multiprocessing
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synth_pipelines.core.tabular.schema import (
    TEXT_SEMANTICS,
    Column,
    SchemaError,
    TableSchema,
)

__all__ = [
    "ARROW_TYPES",
    "REFERENCE_DATE",
    "arrow_schema",
    "check_schema",
    "generate_chunk",
    "generate_table",
]

REFERENCE_DATE = date(2026, 1, 1)
_DEFAULT_SPAN_DAYS = 731  # two years (2024 is a leap year)
_INT_RANGE = (0, 1_000_000)
_FLOAT_RANGE = (0.0, 1000.0)
_UNIQUE_INT_SPAN = 2**31 - 1  # a unique integer column without max spans this many values
_UNBOUNDED_REPEAT = 8  # `*` → 0..8, `+` → 1..8, `{n,}` → n..n+8
_MAX_ALPHABET = 1 << 16
_PRINTABLE = [chr(c) for c in range(32, 127)]

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "category": pa.string(),
    "uuid": pa.string(),
}
# Text semantics with a space inside: a unique suffix is " 17"; other text gets "-17".
_SPACED = {
    *("first_name", "last_name", "full_name", "street_address", "city", "country"),
    *("company", "job", "sentence", "paragraph"),
}
_DERIVABLE = ("email", "username", "domain", "url")


def arrow_schema(schema: TableSchema) -> pa.Schema:
    """The arrow schema every chunk of `schema` has."""
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type], nullable=True) for c in schema.columns])


# --------------------------------------------------------------------------------------------
# Vocabularies (Faker's en_US provider data, loaded once per process)


@dataclass(frozen=True)
class _Words:
    """A vocabulary as an arrow array, optionally weighted (cumulative weights)."""

    values: pa.Array
    cum: np.ndarray | None = None

    @classmethod
    def of(cls, items: Any) -> _Words:
        if hasattr(items, "items"):  # Faker's OrderedDict of value → frequency
            keys = list(items.keys())
            cum = np.cumsum(np.asarray(list(items.values()), dtype=np.float64))
            return cls(pa.array(keys, pa.string()), cum / cum[-1])
        return cls(pa.array(list(items), pa.string()))

    def __len__(self) -> int:
        return len(self.values)

    def index(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.cum is None:
            return rng.integers(0, len(self.values), n)
        return np.minimum(np.searchsorted(self.cum, rng.random(n), side="right"), len(self) - 1)

    def sample(self, rng: np.random.Generator, n: int) -> pa.Array:
        return self.values.take(self.index(rng, n))


@dataclass(frozen=True)
class _Vocab:
    first: _Words
    first_lower: pa.Array  # ascii-lowercase twins, same order (for emails, usernames)
    last: _Words
    last_lower: pa.Array
    street_suffix: _Words
    city_prefix: _Words
    city_suffix: _Words
    country: _Words
    country_code: _Words
    currency: _Words
    company_suffix: _Words
    job: _Words
    tld: _Words
    email_domain: _Words
    word: _Words
    sentence_words: pa.Array  # word, Word, word., Word. (4 x len(word))
    number_suffix: _Words  # "" half the time, else 1..99


_FAKER_MODULES = [
    "faker.providers.address.en_US",
    "faker.providers.company.en_US",
    "faker.providers.currency",
    "faker.providers.internet.en_US",
    "faker.providers.job.en_US",
    "faker.providers.lorem.en_US",
    "faker.providers.person.en_US",
]
# Bank locales whose BBAN format Faker knows (the IBAN country is the locale's).
_IBAN_LOCALES = (
    *("de_DE", "en_GB", "es_ES", "fr_FR", "it_IT", "nl_NL", "pl_PL", "pt_PT", "nl_BE"),
    *("de_AT", "de_CH", "fi_FI", "no_NO", "da_DK", "cs_CZ", "ro_RO", "en_IE"),
)


@functools.cache
def _iban_formats() -> tuple[tuple[str, str], ...]:
    """(country code, BBAN format of "#" digits and "?" letters) from Faker's bank providers."""
    formats = set()
    for locale in _IBAN_LOCALES:
        provider = importlib.import_module(f"faker.providers.bank.{locale}").Provider
        code, fmt = provider.country_code, provider.bban_format
        if locale.endswith(code) and set(fmt) <= set("#?"):
            formats.add((code, fmt))
    return tuple(sorted(formats))


def _lower_ascii(values: pa.Array) -> pa.Array:
    lowered = pc.utf8_lower(values)
    return pc.replace_substring_regex(lowered, pattern="[^a-z]+", replacement="")


@functools.cache
def _vocab() -> _Vocab:
    from faker.providers import currency
    from faker.providers.address import en_US as address_us
    from faker.providers.company import en_US as company_us
    from faker.providers.internet import en_US as internet_us
    from faker.providers.job import en_US as job_us
    from faker.providers.lorem import en_US as lorem_us
    from faker.providers.person import en_US as person_us

    first = _Words.of(person_us.Provider.first_names)
    last = _Words.of(person_us.Provider.last_names)
    words = list(lorem_us.Provider.word_list)
    capital = [w[:1].upper() + w[1:] for w in words]
    sentence_words = pa.array(
        words + capital + [w + "." for w in words] + [w + "." for w in capital]
    )
    internet_p = internet_us.Provider
    email_domains = list(internet_p.free_email_domains) + list(internet_p.safe_domain_names)
    return _Vocab(
        first=first,
        first_lower=_lower_ascii(first.values),
        last=last,
        last_lower=_lower_ascii(last.values),
        street_suffix=_Words.of(address_us.Provider.street_suffixes),
        city_prefix=_Words.of(address_us.Provider.city_prefixes),
        city_suffix=_Words.of(address_us.Provider.city_suffixes),
        country=_Words.of(address_us.Provider.countries),
        country_code=_Words.of(address_us.Provider.alpha_2_country_codes),
        currency=_Words.of(code for code, _name in currency.Provider.currencies),
        company_suffix=_Words.of(company_us.Provider.company_suffixes),
        job=_Words.of(job_us.Provider.jobs),
        tld=_Words.of(internet_p.tlds),
        email_domain=_Words.of(email_domains),
        word=_Words.of(words),
        sentence_words=sentence_words,
        number_suffix=_Words.of([""] * 99 + [str(i) for i in range(1, 100)]),
    )


# --------------------------------------------------------------------------------------------
# Arrow string helpers


def _fixed_width(matrix: np.ndarray) -> pa.Array:
    """One string per row of a (rows, width) uint8 matrix of UTF-8 bytes."""
    n, width = matrix.shape
    data = np.ascontiguousarray(matrix, dtype=np.uint8)
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(width)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _ragged(matrix: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """Row i is the first lengths[i] bytes of matrix row i."""
    n, width = matrix.shape
    data = np.ascontiguousarray(matrix[np.arange(width) < lengths[:, None]], dtype=np.uint8)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _const(text: str, n: int) -> pa.Array:
    raw = np.frombuffer(text.encode(), dtype=np.uint8)
    return _fixed_width(np.broadcast_to(raw, (n, raw.size)))


def _join(*parts: pa.Array | str) -> pa.Array:
    """Row-wise concatenation of arrays and constant strings."""
    args = [pa.scalar(p, pa.string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, "")


def _digits(rng: np.random.Generator, n: int, width: int, first_low: int = 0) -> np.ndarray:
    """(n, width) matrix of ASCII digits; the first digit is at least `first_low`."""
    out = rng.integers(48, 58, (n, width), dtype=np.uint8)
    if first_low and width:
        out[:, 0] = rng.integers(48 + first_low, 58, n, dtype=np.uint8)
    return out


def _numbers(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values, pa.int64()), pa.string())


# --------------------------------------------------------------------------------------------
# Regex sampler (re._parser): literals, classes, \d \w \s ., groups, alternation, quantifiers

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
            return _ragged(matrix, rng.integers(low, high + 1, n))

        return ascii_gen
    letters = pa.array(alphabet, pa.string())

    def one(rng: np.random.Generator, n: int) -> _Part:
        return letters.take(rng.integers(0, len(letters), n))

    return _repeat_gen(one, low, high) if count != (1, 1) else one


def _to_arrow(part: _Part) -> pa.Array:
    return _fixed_width(part) if isinstance(part, np.ndarray) else part


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
        return _join(*[_to_arrow(p) for p in parts])

    return gen


def _repeat_gen(sub: _Gen, low: int, high: int) -> _Gen:
    def gen(rng: np.random.Generator, n: int) -> _Part:
        counts = rng.integers(low, high + 1, n) if high > low else None
        parts: list[_Part] = []
        for j in range(high):
            part = sub(rng, n)
            if j >= low and counts is not None:
                part = pc.if_else(pa.array(j < counts), _to_arrow(part), pa.scalar(""))
            if isinstance(part, np.ndarray) and parts and isinstance(parts[-1], np.ndarray):
                parts[-1] = np.hstack([parts[-1], part])
            else:
                parts.append(part)
        if not parts:
            return np.zeros((n, 0), dtype=np.uint8)
        return parts[0] if len(parts) == 1 else _join(*[_to_arrow(p) for p in parts])

    return gen


def _branch_gen(branches: list[_Gen]) -> _Gen:
    def gen(rng: np.random.Generator, n: int) -> _Part:
        which = pa.array(rng.integers(0, len(branches), n).astype(np.int8))
        return pc.choose(which, *[_to_arrow(b(rng, n)) for b in branches])

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
    probe = _to_arrow(sampler(np.random.default_rng(0), 64)).to_pylist()
    compiled = re.compile(pattern)
    if not all(compiled.fullmatch(v) for v in probe):
        raise _Unsupported("constructs whose matches cannot be sampled reliably")
    return sampler


def _sample_pattern(column: Column) -> _Gen:
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


# --------------------------------------------------------------------------------------------
# Column plans


@dataclass
class _Chunk:
    rows: int
    row_offset: int
    values: dict[str, pa.Array] = field(default_factory=dict)
    # For name columns: indices into the first/last vocabularies (emails derive from them).
    name_parts: dict[str, tuple[np.ndarray | None, np.ndarray | None]] = field(default_factory=dict)

    @functools.cached_property
    def global_index(self) -> np.ndarray:
        """1-based global row numbers of this chunk."""
        return np.arange(self.row_offset + 1, self.row_offset + self.rows + 1, dtype=np.int64)


_Fill = Callable[[Column, np.random.Generator, _Chunk], pa.Array]


def _err(column: Column, attribute: str | None, message: str) -> SchemaError:
    where = f"columns.{column.name}" + (f".{attribute}" if attribute else "")
    return SchemaError(where, f"column {column.name!r}: {message}")


def _id_prefix(name: str) -> str:
    """ "user_id" → "USR", "order_id" → "ORD", "id" → "ID"."""
    base = re.sub(r"(_?(id|key|code|no|number))$", "", name.lower())
    letters = re.sub(r"[^a-z]", "", base)
    if not letters:
        return "ID"
    picked = letters[0] + "".join(c for c in letters[1:] if c not in "aeiou")
    if len(picked) < 3:
        picked = letters
    return picked[:3].upper()


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
    column: Column, rng: np.random.Generator, chunk: _Chunk, size: int, seed: int
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


def _fill_integer(column: Column, rng: np.random.Generator, chunk: _Chunk, seed: int) -> pa.Array:
    n = chunk.rows
    # An id is sequential (a key), unless it is a non-unique reference into a bounded range
    # (a foreign key like a transaction's user_id): then it is drawn from the range.
    if column.semantic_type == "id" and (column.unique or column.max is None):
        start = int(column.min) if column.min is not None else 1
        values = chunk.global_index - 1 + start
        if column.max is not None and n and values[-1] > int(column.max):
            raise _err(column, "max", f"the sequential id passes max ({column.max})")
        return pa.array(values, pa.int64())
    low, high = _int_bounds(column)
    if column.unique:
        return pa.array(low + _unique_codes(column, rng, chunk, high - low + 1, seed), pa.int64())
    drawn = _draw_numbers(column, rng, n, low, high)
    if drawn is None:
        return pa.array(rng.integers(low, high, n, endpoint=True), pa.int64())
    drawn = np.clip(np.rint(drawn), -(2.0**62), 2.0**62)
    return pa.array(drawn.astype(np.int64), pa.int64())


def _fill_float(column: Column, rng: np.random.Generator, chunk: _Chunk, seed: int) -> pa.Array:
    low, high = _float_bounds(column)
    values = _draw_numbers(column, rng, chunk.rows, low, high)
    if column.decimals is not None:
        values = np.round(values, column.decimals)
        lo, hi = column.bound("min"), column.bound("max")
        if lo is not None or hi is not None:  # rounding may step just outside a bound
            values = np.clip(values, lo, hi)
    return pa.array(values, pa.float64())


def _fill_boolean(column: Column, rng: np.random.Generator, chunk: _Chunk, seed: int) -> pa.Array:
    if column.unique:
        return pa.array(_unique_codes(column, rng, chunk, 2, seed).astype(bool))
    return pa.array(rng.random(chunk.rows) < 0.5)


def _fill_category(column: Column, rng: np.random.Generator, chunk: _Chunk, seed: int) -> pa.Array:
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


def _fill_temporal(column: Column, rng: np.random.Generator, chunk: _Chunk, seed: int) -> pa.Array:
    lo, hi = _temporal_bounds(column)
    if column.unique:
        values = lo + _unique_codes(column, rng, chunk, hi - lo + 1, seed)
    else:
        values = rng.integers(lo, hi, chunk.rows, endpoint=True)
    if column.type == "date":
        return pa.array(values.astype(np.int32), pa.date32())
    return pa.array(values.astype(np.int64), ARROW_TYPES["datetime"])


def _fill_uuid(column: Column, rng: np.random.Generator, chunk: _Chunk, seed: int) -> pa.Array:
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
    return _fixed_width(out)


# ---- text semantics


def _names(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    vocab = _vocab()
    return vocab.first.index(rng, n), vocab.last.index(rng, n)


def _text_first(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    first = _vocab().first.index(rng, chunk.rows)
    chunk.name_parts[column.name] = (first, None)
    return _vocab().first.values.take(first)


def _text_last(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    last = _vocab().last.index(rng, chunk.rows)
    chunk.name_parts[column.name] = (None, last)
    return _vocab().last.values.take(last)


def _text_full(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    first, last = _names(rng, chunk.rows)
    chunk.name_parts[column.name] = (first, last)
    vocab = _vocab()
    return pc.binary_join_element_wise(
        vocab.first.values.take(first), vocab.last.values.take(last), " "
    )


def _handle(column: Column, rng: np.random.Generator, chunk: _Chunk, sep: str) -> pa.Array:
    """A lowercase handle ("jane.doe") from the depends_on column's row, or random names."""
    vocab = _vocab()
    n = chunk.rows
    parts = chunk.name_parts.get(column.depends_on or "")
    if parts is not None:
        first, last = parts
        pieces = []
        if first is not None:
            pieces.append(vocab.first_lower.take(first))
        if last is not None:
            pieces.append(vocab.last_lower.take(last))
        return pieces[0] if len(pieces) == 1 else pc.binary_join_element_wise(*pieces, sep)
    first, last = _names(rng, n)
    fallback = pc.binary_join_element_wise(
        vocab.first_lower.take(first), vocab.last_lower.take(last), sep
    )
    if column.depends_on is None:
        return fallback
    source = chunk.values[column.depends_on]
    handle = pc.replace_substring_regex(pc.utf8_lower(source), pattern="[^a-z]+", replacement=sep)
    handle = pc.utf8_trim(handle, sep)
    usable = pc.fill_null(pc.greater(pc.utf8_length(handle), 0), False)
    return pc.if_else(usable, handle, fallback)


def _handle_number(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    if column.unique:
        return _numbers(chunk.global_index)
    return _vocab().number_suffix.sample(rng, chunk.rows)


def _text_email(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    local = _handle(column, rng, chunk, ".")
    number = _handle_number(column, rng, chunk)
    domain = _vocab().email_domain.sample(rng, chunk.rows)
    return _join(local, number, "@", domain)


def _text_username(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    return _join(_handle(column, rng, chunk, "_"), _handle_number(column, rng, chunk))


def _text_domain(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    vocab = _vocab()
    if column.depends_on is not None:
        label = _handle(column, rng, chunk, "")
    else:
        label = vocab.last_lower.take(vocab.last.index(rng, chunk.rows))
    if column.unique:
        label = _join(label, _numbers(chunk.global_index))
    return _join(label, ".", vocab.tld.sample(rng, chunk.rows))


def _text_url(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    dep = column.depends_on
    if dep is not None and chunk.values.get(dep) is not None and dep not in chunk.name_parts:
        domain = chunk.values[dep]
        looks_like_domain = pc.match_substring_regex(domain, r"^[a-z0-9.-]+\.[a-z]+$")
        fallback = _text_domain(column, rng, chunk)
        domain = pc.if_else(pc.fill_null(looks_like_domain, False), domain, fallback)
        if column.unique:
            domain = _join(domain, "/", _numbers(chunk.global_index))
    else:
        domain = _text_domain(column, rng, chunk)
    return _join("https://www.", domain)


def _text_phone(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    n = chunk.rows
    out = np.empty((n, 14), dtype=np.uint8)
    out[:] = np.frombuffer(b"(000) 000-0000", dtype=np.uint8)
    out[:, 1:4] = _digits(rng, n, 3, first_low=2)
    out[:, 6:9] = _digits(rng, n, 3, first_low=2)
    out[:, 10:14] = _digits(rng, n, 4)
    return _fixed_width(out)


def _text_postcode(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    return _fixed_width(_digits(rng, chunk.rows, 5))


def _text_street(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    vocab = _vocab()
    n = chunk.rows
    number = _numbers(rng.integers(1, 10_000, n))
    first, last = _names(rng, n)
    name = pc.if_else(
        pa.array(rng.random(n) < 0.5), vocab.first.values.take(first), vocab.last.values.take(last)
    )
    return pc.binary_join_element_wise(number, name, vocab.street_suffix.sample(rng, n), " ")


def _text_city(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    vocab = _vocab()
    n = chunk.rows
    first, last = _names(rng, n)
    first_v, last_v = vocab.first.values.take(first), vocab.last.values.take(last)
    prefix, suffix = vocab.city_prefix.sample(rng, n), vocab.city_suffix.sample(rng, n)
    forms = [  # Faker's en_US city formats
        _join(prefix, " ", first_v, suffix),
        _join(prefix, " ", first_v),
        _join(first_v, suffix),
        _join(last_v, suffix),
    ]
    return pc.choose(pa.array(rng.integers(0, 4, n).astype(np.int8)), *forms)


def _text_company(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    vocab = _vocab()
    n = chunk.rows
    a, b, c = (vocab.last.sample(rng, n) for _ in range(3))
    forms = [  # Faker's en_US company formats
        _join(a, " ", vocab.company_suffix.sample(rng, n)),
        _join(a, "-", b),
        _join(a, ", ", b, " and ", c),
    ]
    return pc.choose(pa.array(rng.integers(0, 3, n).astype(np.int8)), *forms)


def _text_ipv4(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    n = chunk.rows
    octets = [_numbers(rng.integers(1, 224, n))] + [
        _numbers(rng.integers(0, 256, n)) for _ in "abc"
    ]
    return pc.binary_join_element_wise(*octets, ".")


def _iban_chunk(rng: np.random.Generator, code: str, fmt: str, n: int) -> pa.Array:
    letters = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
    bban = np.empty((n, len(fmt)), dtype=np.uint8)
    for j, kind in enumerate(fmt):
        bban[:, j] = rng.integers(48, 58, n) if kind == "#" else letters[rng.integers(0, 26, n)]
    # ISO 13616 check digits: bban + country (A=10..Z=35) + "00", mod 97.
    acc = np.zeros(n, dtype=np.int64)
    for j in range(bban.shape[1]):
        col = bban[:, j].astype(np.int64)
        is_digit = col < 65
        acc = np.where(is_digit, acc * 10 + (col - 48), acc * 100 + (col - 55)) % 97
    tail = "".join(str(ord(ch) - 55) for ch in code) + "00"
    for ch in tail:
        acc = (acc * 10 + int(ch)) % 97
    check = 98 - acc
    out = np.empty((n, 4 + len(fmt)), dtype=np.uint8)
    out[:, 0:2] = np.frombuffer(code.encode(), dtype=np.uint8)
    out[:, 2] = 48 + check // 10
    out[:, 3] = 48 + check % 10
    out[:, 4:] = bban
    return _fixed_width(out)


def _text_iban(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    formats = _iban_formats()
    n = chunk.rows
    which = rng.integers(0, len(formats), n)
    order = np.argsort(which, kind="stable")
    counts = np.bincount(which, minlength=len(formats))
    parts = [
        _iban_chunk(rng, code, fmt, int(k)) for (code, fmt), k in zip(formats, counts, strict=True)
    ]
    combined = pa.concat_arrays(parts)
    return combined.take(np.argsort(order, kind="stable"))


def _sentences(rng: np.random.Generator, n: int) -> pa.Array:
    """n sentences of 6-14 Faker lorem words, capitalised, ending in "."."""
    vocab = _vocab()
    size = len(vocab.word)
    lengths = rng.integers(6, 15, n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    words = rng.integers(0, size, int(offsets[-1]))
    words[offsets[:-1]] += size  # capitalised first word
    words[offsets[1:] - 1] += 2 * size  # "word." last word
    lists = pa.ListArray.from_arrays(
        pa.array(offsets.astype(np.int32)), vocab.sentence_words.take(words)
    )
    return pc.binary_join(lists, " ")


def _text_sentence(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    return _sentences(rng, chunk.rows)


def _text_paragraph(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
    counts = rng.integers(3, 7, chunk.rows)
    offsets = np.zeros(chunk.rows + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    sentences = _sentences(rng, int(offsets[-1]))
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), sentences), " ")


def _vocab_fill(attr: str) -> Callable[[Column, np.random.Generator, _Chunk], pa.Array]:
    def fill(column: Column, rng: np.random.Generator, chunk: _Chunk) -> pa.Array:
        return getattr(_vocab(), attr).sample(rng, chunk.rows)

    return fill


_TEXT: dict[str, Callable[[Column, np.random.Generator, _Chunk], pa.Array]] = {
    "first_name": _text_first,
    "last_name": _text_last,
    "full_name": _text_full,
    "email": _text_email,
    "phone": _text_phone,
    "street_address": _text_street,
    "city": _text_city,
    "country": _vocab_fill("country"),
    "country_code": _vocab_fill("country_code"),
    "postcode": _text_postcode,
    "currency_code": _vocab_fill("currency"),
    "company": _text_company,
    "job": _vocab_fill("job"),
    "url": _text_url,
    "domain": _text_domain,
    "ipv4": _text_ipv4,
    "username": _text_username,
    "iban": _text_iban,
    "word": _vocab_fill("word"),
    "sentence": _text_sentence,
    "paragraph": _text_paragraph,
}
# Unique by construction (or random enough to leave to dedup): no suffix needed.
_NO_SUFFIX = {"email", "username", "domain", "url", "iban"}


def _fill_string(column: Column, rng: np.random.Generator, chunk: _Chunk, seed: int) -> pa.Array:
    if column.pattern is not None:
        return _to_arrow(_sample_pattern(column)(rng, chunk.rows))
    semantic = column.semantic_type
    if semantic == "id":
        number = pc.utf8_lpad(_numbers(chunk.global_index), width=8, padding="0")
        return _join(_id_prefix(column.name) + "-", number)
    values = _TEXT[semantic or "word"](column, rng, chunk)
    if column.unique and semantic not in _NO_SUFFIX:
        sep = " " if semantic in _SPACED else "-"
        values = _join(values, sep, _numbers(chunk.global_index))
    return values


_FILLS: dict[str, Callable[[Column, np.random.Generator, _Chunk, int], pa.Array]] = {
    "string": _fill_string,
    "integer": _fill_integer,
    "float": _fill_float,
    "boolean": _fill_boolean,
    "date": _fill_temporal,
    "datetime": _fill_temporal,
    "category": _fill_category,
    "uuid": _fill_uuid,
}


def _check_column(schema: TableSchema, column: Column) -> None:
    semantic = column.semantic_type
    if column.type == "string" and column.pattern is not None:
        _sample_pattern(column)
        if column.depends_on is not None:
            raise _err(column, "depends_on", "a pattern column cannot also derive from a column")
    if semantic in TEXT_SEMANTICS and column.type not in ("string", "category", "uuid"):
        raise _err(
            column,
            "semantic_type",
            f"semantic_type {semantic!r} gives text: declare the column as type string",
        )
    if semantic == "id" and column.type not in ("integer", "string", "uuid"):
        raise _err(column, "semantic_type", "an id column must be integer, string or uuid")
    if column.depends_on is not None and column.pattern is None:
        if column.type != "string" or semantic not in _DERIVABLE:
            raise _err(
                column,
                "depends_on",
                "only email, username, domain and url string columns can derive from another "
                f"column (this is a {column.type} column with semantic_type {semantic!r})",
            )
        source = schema.column(column.depends_on)
        if source.type != "string":
            raise _err(
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
            raise _err(column, "depends_on", "columns depend on each other in a cycle")
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


@functools.lru_cache(maxsize=32)
def _checked(schema_json: str) -> TableSchema:
    schema = TableSchema.model_validate_json(schema_json)
    check_schema(schema)
    return schema


# --------------------------------------------------------------------------------------------
# Chunks and tables


def generate_chunk(
    schema: TableSchema, *, rows: int, seed: int, chunk_index: int, row_offset: int
) -> pa.Table:
    """`rows` rows of `schema`, reproducible from (seed, chunk_index); `row_offset` is the
    global index of the first row (for sequential ids and cross-chunk uniqueness)."""
    check_schema(schema)
    return _generate(schema, rows=rows, seed=seed, chunk_index=chunk_index, row_offset=row_offset)


def _generate(
    schema: TableSchema, *, rows: int, seed: int, chunk_index: int, row_offset: int
) -> pa.Table:
    if rows < 0 or row_offset < 0 or chunk_index < 0:
        raise ValueError("rows, row_offset and chunk_index must not be negative")
    root = np.random.default_rng([seed, chunk_index])
    streams = dict(
        zip([c.name for c in schema.columns], root.spawn(len(schema.columns)), strict=True)
    )
    chunk = _Chunk(rows=rows, row_offset=row_offset)
    for column in _order(schema):
        rng = streams[column.name]
        arrow_type = ARROW_TYPES[column.type]
        if column.source == "llm":
            chunk.values[column.name] = pa.nulls(rows, arrow_type)
            continue
        values = _FILLS[column.type](column, rng, chunk, seed)
        if column.nullable > 0 and rows:
            nulls = round(rows * column.nullable)
            if nulls:
                mask = np.zeros(rows, dtype=bool)
                mask[rng.choice(rows, size=nulls, replace=False)] = True
                values = pc.if_else(pa.array(mask), pa.scalar(None, arrow_type), values)
        chunk.values[column.name] = values.cast(arrow_type) if values.type != arrow_type else values
    arrays = [chunk.values[c.name] for c in schema.columns]
    return pa.Table.from_arrays(arrays, schema=arrow_schema(schema))


def _worker(
    schema_json: str, rows: int, seed: int, chunk_index: int, row_offset: int
) -> pa.Table | tuple[str, str]:
    """One chunk in a worker process; a SchemaError comes back as (field, message), since
    SchemaError's constructor does not survive pickling."""
    try:
        schema = _checked(schema_json)
        return _generate(
            schema, rows=rows, seed=seed, chunk_index=chunk_index, row_offset=row_offset
        )
    except SchemaError as exc:
        return exc.field, str(exc)


def _result(future: Future[pa.Table | tuple[str, str]]) -> pa.Table:
    result = future.result()
    if isinstance(result, tuple):
        raise SchemaError(*result)
    return result


def _mp_context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # Workers fork from a server that already imported numpy, pyarrow (and the pandas it
        # pulls in lazily) and Faker's data modules.
        ctx.set_forkserver_preload([__name__, "pandas", *_FAKER_MODULES])
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
    if total_rows < 0 or chunk_size < 1 or start_chunk < 0:
        raise ValueError("total_rows must be >= 0, chunk_size >= 1 and start_chunk >= 0")
    check_schema(schema)
    n_chunks = -(-total_rows // chunk_size)
    jobs = [
        (start_chunk + i, min(chunk_size, total_rows - i * chunk_size)) for i in range(n_chunks)
    ]

    def emit(index: int, table: pa.Table) -> tuple[int, pa.Table]:
        if on_chunk is not None:
            on_chunk(index, table.num_rows)
        return index, table

    if max_workers <= 1 or n_chunks <= 1:
        for index, rows in jobs:
            table = _generate(
                schema, rows=rows, seed=seed, chunk_index=index, row_offset=index * chunk_size
            )
            yield emit(index, table)
        return
    schema_json = schema.model_dump_json()
    workers = min(max_workers, n_chunks)
    with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context()) as pool:
        pending: deque[tuple[int, Future[pa.Table | tuple[str, str]]]] = deque()
        queue = iter(jobs)
        try:
            for index, rows in queue:
                args = (schema_json, rows, seed, index, index * chunk_size)
                pending.append((index, pool.submit(_worker, *args)))
                if len(pending) >= 2 * workers:
                    done_index, future = pending.popleft()
                    yield emit(done_index, _result(future))
            while pending:
                done_index, future = pending.popleft()
                yield emit(done_index, _result(future))
        finally:
            for _index, future in pending:
                future.cancel()
