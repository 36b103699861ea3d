"""Text values for the tabular generator: string columns and their semantic types.

- `pattern` (a regex, see `patterns`) wins over `semantic_type`; without either a string column
  is lorem words. Semantics (names, emails, phones, addresses, cities, countries, codes,
  companies, jobs, urls, domains, IPv4s, usernames, IBANs, words, sentences, paragraphs) are
  sampled vectorised from Faker's en_US vocabularies (see `vocabulary`) in Faker's formats.
- `id`: a prefix from the column name + zero-padded global row number
  ("user_id" → "USR-00000001").
- `unique`: text that is not unique by nature (names, words, phone…) gets the global row number
  appended ("Jane Doe 17"; emails/usernames before the "@": "jane.doe17@…"). Pattern columns and
  IBANs are random and left to the job's dedup.
- `depends_on`: email, username, domain and url derive from another string column — email
  "jane.doe42@gmail.com" from the same row's "Jane Doe" (a column derived from an LLM column,
  null at this point, falls back to random names).
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synth_pipelines.core.tabular.arrow_strings import digits, fixed_width, join, numbers
from synth_pipelines.core.tabular.chunk import Chunk, Fill
from synth_pipelines.core.tabular.patterns import sample_pattern, to_arrow
from synth_pipelines.core.tabular.schema import Column
from synth_pipelines.core.tabular.vocabulary import faker_vocab, iban_formats

__all__ = ["fill_string"]

_SPACED = {
    *("first_name", "last_name", "full_name", "street_address", "city", "country"),
    *("company", "job", "sentence", "paragraph"),
}


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


def _names(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    vocab = faker_vocab()
    return vocab.first.index(rng, n), vocab.last.index(rng, n)


def _text_first(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    first = faker_vocab().first.index(rng, chunk.rows)
    chunk.name_parts[column.name] = (first, None)
    return faker_vocab().first.values.take(first)


def _text_last(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    last = faker_vocab().last.index(rng, chunk.rows)
    chunk.name_parts[column.name] = (None, last)
    return faker_vocab().last.values.take(last)


def _text_full(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    first, last = _names(rng, chunk.rows)
    chunk.name_parts[column.name] = (first, last)
    vocab = faker_vocab()
    return pc.binary_join_element_wise(
        vocab.first.values.take(first), vocab.last.values.take(last), " "
    )


def _handle(column: Column, rng: np.random.Generator, chunk: Chunk, sep: str) -> pa.Array:
    """A lowercase handle ("jane.doe") from the depends_on column's row, or random names."""
    vocab = faker_vocab()
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


def _handle_number(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    if column.unique:
        return numbers(chunk.global_index)
    return faker_vocab().number_suffix.sample(rng, chunk.rows)


def _text_email(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    local = _handle(column, rng, chunk, ".")
    number = _handle_number(column, rng, chunk)
    domain = faker_vocab().email_domain.sample(rng, chunk.rows)
    return join(local, number, "@", domain)


def _text_username(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    return join(_handle(column, rng, chunk, "_"), _handle_number(column, rng, chunk))


def _text_domain(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    vocab = faker_vocab()
    if column.depends_on is not None:
        label = _handle(column, rng, chunk, "")
    else:
        label = vocab.last_lower.take(vocab.last.index(rng, chunk.rows))
    if column.unique:
        label = join(label, numbers(chunk.global_index))
    return join(label, ".", vocab.tld.sample(rng, chunk.rows))


def _text_url(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    dep = column.depends_on
    if dep is not None and chunk.values.get(dep) is not None and dep not in chunk.name_parts:
        domain = chunk.values[dep]
        looks_like_domain = pc.match_substring_regex(domain, r"^[a-z0-9.-]+\.[a-z]+$")
        fallback = _text_domain(column, rng, chunk)
        domain = pc.if_else(pc.fill_null(looks_like_domain, False), domain, fallback)
        if column.unique:
            domain = join(domain, "/", numbers(chunk.global_index))
    else:
        domain = _text_domain(column, rng, chunk)
    return join("https://www.", domain)


def _text_phone(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    n = chunk.rows
    out = np.empty((n, 14), dtype=np.uint8)
    out[:] = np.frombuffer(b"(000) 000-0000", dtype=np.uint8)
    out[:, 1:4] = digits(rng, n, 3, first_low=2)
    out[:, 6:9] = digits(rng, n, 3, first_low=2)
    out[:, 10:14] = digits(rng, n, 4)
    return fixed_width(out)


def _text_postcode(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    return fixed_width(digits(rng, chunk.rows, 5))


def _text_street(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    vocab = faker_vocab()
    n = chunk.rows
    number = numbers(rng.integers(1, 10_000, n))
    first, last = _names(rng, n)
    name = pc.if_else(
        pa.array(rng.random(n) < 0.5), vocab.first.values.take(first), vocab.last.values.take(last)
    )
    return pc.binary_join_element_wise(number, name, vocab.street_suffix.sample(rng, n), " ")


def _text_city(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    vocab = faker_vocab()
    n = chunk.rows
    first, last = _names(rng, n)
    first_v, last_v = vocab.first.values.take(first), vocab.last.values.take(last)
    prefix, suffix = vocab.city_prefix.sample(rng, n), vocab.city_suffix.sample(rng, n)
    forms = [  # Faker's en_US city formats
        join(prefix, " ", first_v, suffix),
        join(prefix, " ", first_v),
        join(first_v, suffix),
        join(last_v, suffix),
    ]
    return pc.choose(pa.array(rng.integers(0, 4, n).astype(np.int8)), *forms)


def _text_company(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    vocab = faker_vocab()
    n = chunk.rows
    a, b, c = (vocab.last.sample(rng, n) for _ in range(3))
    forms = [  # Faker's en_US company formats
        join(a, " ", vocab.company_suffix.sample(rng, n)),
        join(a, "-", b),
        join(a, ", ", b, " and ", c),
    ]
    return pc.choose(pa.array(rng.integers(0, 3, n).astype(np.int8)), *forms)


def _text_ipv4(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    n = chunk.rows
    octets = [numbers(rng.integers(1, 224, n))] + [numbers(rng.integers(0, 256, n)) for _ in "abc"]
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
    return fixed_width(out)


def _text_iban(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    formats = iban_formats()
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
    vocab = faker_vocab()
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


def _text_sentence(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    return _sentences(rng, chunk.rows)


def _text_paragraph(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
    counts = rng.integers(3, 7, chunk.rows)
    offsets = np.zeros(chunk.rows + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    sentences = _sentences(rng, int(offsets[-1]))
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), sentences), " ")


def _vocab_fill(attr: str) -> Fill:
    def fill(column: Column, rng: np.random.Generator, chunk: Chunk) -> pa.Array:
        return getattr(faker_vocab(), attr).sample(rng, chunk.rows)

    return fill


_TEXT: dict[str, Fill] = {
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


def fill_string(column: Column, rng: np.random.Generator, chunk: Chunk, seed: int) -> pa.Array:
    if column.pattern is not None:
        return to_arrow(sample_pattern(column)(rng, chunk.rows))
    semantic = column.semantic_type
    if semantic == "id":
        number = pc.utf8_lpad(numbers(chunk.global_index), width=8, padding="0")
        return join(_id_prefix(column.name) + "-", number)
    values = _TEXT[semantic or "word"](column, rng, chunk)
    if column.unique and semantic not in _NO_SUFFIX:
        sep = " " if semantic in _SPACED else "-"
        values = join(values, sep, numbers(chunk.global_index))
    return values
