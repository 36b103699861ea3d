"""The vectorised tabular generator: types, bounds, distributions, uniqueness, semantics."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from faker.providers import currency
from faker.providers.address import en_US as address_us
from faker.providers.internet import en_US as internet_us
from faker.providers.job import en_US as job_us
from faker.providers.lorem import en_US as lorem_us
from faker.providers.person import en_US as person_us

from synth_pipelines.core.tabular.dedup import table_keys
from synth_pipelines.core.tabular.generator import (
    check_schema,
    generate_chunk,
    generate_keyed_table,
    generate_table,
)
from synth_pipelines.core.tabular.schema import TEXT_SEMANTICS, SchemaError, TableSchema
from tests.hash_seeds import stdout_per_hash_seed

FIRST = set(person_us.Provider.first_names)
LAST = set(person_us.Provider.last_names)
WORDS = set(lorem_us.Provider.word_list)


def schema(*columns: dict) -> TableSchema:
    return TableSchema.parse({"columns": list(columns)})


def chunk(s: TableSchema, rows: int = 2000, *, seed: int = 7, index: int = 0, offset: int = 0):
    return generate_chunk(s, rows=rows, seed=seed, chunk_index=index, row_offset=offset)


def values(s: TableSchema, name: str, rows: int = 2000, **kwargs) -> list:
    return chunk(s, rows, **kwargs).column(name).to_pylist()


def chunks(s: TableSchema, *, n: int, size: int, seed: int = 3) -> pa.Table:
    tables = [t for _, t in generate_table(s, total_rows=n, chunk_size=size, seed=seed)]
    return pa.concat_tables(tables)


MIXED = schema(
    {"name": "id", "type": "integer", "semantic_type": "id", "unique": True},
    {"name": "full_name", "type": "string", "semantic_type": "full_name"},
    {"name": "email", "type": "string", "semantic_type": "email", "depends_on": "full_name"},
    {"name": "amount", "type": "float", "distribution": "lognormal", "mean": 4, "std": 1},
    {"name": "currency", "type": "string", "semantic_type": "currency_code"},
    {"name": "ts", "type": "datetime"},
    {"name": "day", "type": "date"},
    {
        "name": "tier",
        "type": "category",
        "categories": ["a", "b", "c", "d"],
        "weights": [0.5, 0.3, 0.15, 0.05],
    },
    {"name": "flag", "type": "boolean"},
    {"name": "score", "type": "integer", "min": 0, "max": 100},
    {"name": "token", "type": "uuid"},
    {"name": "sentence", "type": "string", "semantic_type": "sentence"},
)


# ---- reproducibility and types


def test_same_seed_and_chunk_reproduce_and_others_differ():
    a = chunk(MIXED, 500, seed=1, index=4)
    assert a.equals(chunk(MIXED, 500, seed=1, index=4))
    other_chunk = chunk(MIXED, 500, seed=1, index=5)
    other_seed = chunk(MIXED, 500, seed=2, index=4)
    for name in ("full_name", "amount", "ts", "token", "sentence"):
        assert a.column(name) != other_chunk.column(name)
        assert a.column(name) != other_seed.column(name)


def test_a_chunk_is_the_same_in_every_process():
    # chunks are generated in worker processes: nothing may follow PYTHONHASHSEED (Faker builds
    # some locale lists from sets; the pseudonymiser once picked cities by that order)
    script = (
        "import hashlib, json, sys\n"
        "import pyarrow as pa\n"
        "from synth_pipelines.core.tabular.generator import generate_chunk\n"
        "from synth_pipelines.core.tabular.schema import TableSchema\n"
        "s = TableSchema.parse(json.loads(sys.argv[1]))\n"
        "t = generate_chunk(s, rows=300, seed=5, chunk_index=2, row_offset=0)\n"
        "print(json.dumps(t.to_pylist(), default=str))\n"
    )
    columns = [{"name": t, "type": "string", "semantic_type": t} for t in TEXT_SEMANTICS]
    spec = json.dumps({"columns": columns})
    outputs = stdout_per_hash_seed(script, spec, ("1", "2"))
    assert len(outputs) == 1
    here = generate_chunk(
        TableSchema.parse(json.loads(spec)), rows=300, seed=5, chunk_index=2, row_offset=0
    )
    assert json.loads(outputs.pop()) == json.loads(json.dumps(here.to_pylist(), default=str))


def test_arrow_types_follow_column_types_in_schema_order():
    table = chunk(MIXED, 10)
    assert table.column_names == [c.name for c in MIXED.columns]
    expected = {
        "id": pa.int64(),
        "full_name": pa.string(),
        "amount": pa.float64(),
        "ts": pa.timestamp("us", tz="UTC"),
        "day": pa.date32(),
        "tier": pa.string(),
        "flag": pa.bool_(),
        "score": pa.int64(),
        "token": pa.string(),
    }
    for name, arrow_type in expected.items():
        assert table.schema.field(name).type == arrow_type, name
    assert table.num_rows == 10
    assert chunk(MIXED, 0).num_rows == 0


# ---- numbers, dates, categories


def test_integer_and_float_bounds_and_uniform_means():
    s = schema(
        {"name": "i", "type": "integer", "min": -5, "max": 5},
        {"name": "f", "type": "float", "min": 10.0, "max": 20.0, "decimals": 1},
        {
            "name": "n",
            "type": "integer",
            "distribution": "normal",
            "mean": 50,
            "std": 30,
            "min": 0,
            "max": 100,
        },
        {"name": "d", "type": "float"},
        {"name": "z", "type": "integer"},
    )
    t = chunk(s, 20_000)
    i, f = np.array(t["i"].to_pylist()), np.array(t["f"].to_pylist())
    assert i.min() == -5 and i.max() == 5
    assert f.min() >= 10.0 and f.max() <= 20.0
    assert np.allclose(f, np.round(f, 1))
    assert abs(f.mean() - 15.0) < 0.1
    n = np.array(t["n"].to_pylist())
    assert n.min() == 0 and n.max() == 100  # clipped tails pile up at the bounds
    d, z = np.array(t["d"].to_pylist()), np.array(t["z"].to_pylist())
    assert d.min() >= 0 and d.max() <= 1000 and abs(d.mean() - 500) < 10
    assert z.min() >= 0 and z.max() <= 1_000_000


def test_normal_lognormal_poisson_distributions():
    s = schema(
        {"name": "n", "type": "float", "distribution": "normal", "mean": 100, "std": 15},
        {
            "name": "ln",
            "type": "float",
            "distribution": "lognormal",
            "mean": 3,
            "std": 0.5,
            "min": 0,
        },
        {"name": "p", "type": "integer", "distribution": "poisson", "mean": 4},
    )
    t = chunk(s, 40_000)
    n = np.array(t["n"].to_pylist())
    assert abs(n.mean() - 100) < 0.5 and abs(n.std() - 15) < 0.5
    ln = np.array(t["ln"].to_pylist())
    assert ln.min() > 0
    assert abs(np.median(ln) - np.exp(3)) < 0.5  # mean/std describe the underlying normal
    p = np.array(t["p"].to_pylist())
    assert p.min() >= 0 and abs(p.mean() - 4) < 0.05


def test_dates_and_datetimes_within_bounds_and_default_window():
    s = schema(
        {"name": "d", "type": "date", "min": "2020-02-01", "max": "2020-02-29"},
        {
            "name": "dt",
            "type": "datetime",
            "min": "2021-06-01T12:00:00",
            "max": "2021-06-01T13:00:00",
        },
        {"name": "dd", "type": "date"},
        {"name": "ddt", "type": "datetime"},
    )
    t = chunk(s, 5000)
    d = t["d"].to_pylist()
    assert min(d) == date(2020, 2, 1) and max(d) == date(2020, 2, 29)
    dt = t["dt"].to_pylist()
    assert datetime(2021, 6, 1, 12, tzinfo=UTC) <= min(dt) <= max(dt)
    assert max(dt) <= datetime(2021, 6, 1, 13, tzinfo=UTC)
    dd, ddt = t["dd"].to_pylist(), t["ddt"].to_pylist()
    assert date(2024, 1, 1) <= min(dd) and max(dd) < date(2026, 1, 1)
    assert datetime(2024, 1, 1, tzinfo=UTC) <= min(ddt) and max(ddt) <= datetime(
        2026, 1, 1, tzinfo=UTC
    )


def test_category_weights_are_respected():
    tiers = values(MIXED, "tier", 40_000)
    share = {c: tiers.count(c) / len(tiers) for c in "abcd"}
    for category, weight in zip("abcd", [0.5, 0.3, 0.15, 0.05], strict=True):
        assert abs(share[category] - weight) < 0.015
    plain = schema({"name": "c", "type": "category", "categories": ["x", "y"]})
    assert abs(values(plain, "c", 20_000).count("x") / 20_000 - 0.5) < 0.02


def test_nullable_share_is_exact_per_chunk():
    s = schema(
        {"name": "s", "type": "string", "semantic_type": "city", "nullable": 0.25},
        {"name": "i", "type": "integer", "nullable": 0.1},
        {"name": "t", "type": "datetime", "nullable": 1.0},
        {"name": "b", "type": "boolean"},
    )
    t = chunk(s, 1000)
    assert t["s"].null_count == 250 and t["i"].null_count == 100
    assert t["t"].null_count == 1000 and t["b"].null_count == 0


def test_llm_columns_are_left_null():
    s = schema(
        {"name": "bio", "type": "string", "source": "llm"},
        {"name": "n", "type": "integer"},
    )
    t = chunk(s, 50)
    assert t["bio"].null_count == 50 and t["bio"].type == pa.string()


# ---- uniqueness across chunks


def test_unique_values_hold_across_chunks():
    s = schema(
        {"name": "id", "type": "integer", "semantic_type": "id"},
        {"name": "user_id", "type": "string", "semantic_type": "id"},
        {"name": "code", "type": "integer", "unique": True, "min": 1, "max": 1000},
        {"name": "big", "type": "integer", "unique": True},
        {"name": "day", "type": "date", "unique": True, "min": "2024-01-01", "max": "2026-09-26"},
        {"name": "name", "type": "string", "semantic_type": "full_name", "unique": True},
        {
            "name": "email",
            "type": "string",
            "semantic_type": "email",
            "unique": True,
            "depends_on": "name",
        },
        {"name": "word", "type": "string", "semantic_type": "word", "unique": True},
    )
    t = chunks(s, n=1000, size=300)  # chunks of 300, 300, 300, 100
    assert t["id"].to_pylist() == list(range(1, 1001))
    assert t["user_id"][0].as_py() == "USR-00000001" and t["user_id"][999].as_py() == "USR-00001000"
    assert sorted(t["code"].to_pylist()) == list(range(1, 1001))  # a bijection of the range
    assert t["code"].to_pylist()[:300] != sorted(t["code"].to_pylist()[:300])
    for name in ("user_id", "big", "day", "name", "email", "word"):
        assert len(set(t[name].to_pylist())) == 1000, name
    assert all(n.rsplit(" ", 1)[1].isdigit() for n in t["name"].to_pylist())


def test_top_up_chunks_continue_uniqueness_and_match_generate_chunk():
    s = schema(
        {"name": "id", "type": "integer", "semantic_type": "id"},
        {"name": "code", "type": "integer", "unique": True, "min": 0, "max": 999},
    )
    first = chunks(s, n=600, size=200)
    top_up = dict(generate_table(s, total_rows=300, chunk_size=200, seed=3, start_chunk=3))
    assert list(top_up) == [3, 4] and top_up[4].num_rows == 100
    assert top_up[3].equals(generate_chunk(s, rows=200, seed=3, chunk_index=3, row_offset=600))
    every = first["code"].to_pylist() + [v for t in top_up.values() for v in t["code"].to_pylist()]
    assert len(set(every)) == 900
    assert top_up[3]["id"][0].as_py() == 601


# ---- text semantics


def test_email_and_username_derive_from_the_same_rows_name():
    s = schema(
        {"name": "name", "type": "string", "semantic_type": "full_name"},
        {"name": "email", "type": "string", "semantic_type": "email", "depends_on": "name"},
        {"name": "login", "type": "string", "semantic_type": "username", "depends_on": "name"},
    )
    t = chunk(s, 3000)
    for name, email, login in zip(
        *(t[c].to_pylist() for c in ("name", "email", "login")), strict=True
    ):
        first, last = name.lower().split(" ")
        assert re.fullmatch(rf"{first}\.{last}\d{{0,2}}@[a-z]+\.[a-z]+", email), (name, email)
        assert re.fullmatch(rf"{first}_{last}\d{{0,2}}", login), (name, login)


def test_email_derives_from_any_string_column_and_llm_fallback():
    s = schema(
        {"name": "who", "type": "string", "pattern": "Ann[- ]Marie O'Neil"},
        {"name": "email", "type": "string", "semantic_type": "email", "depends_on": "who"},
        {"name": "bio", "type": "string", "source": "llm"},
        {"name": "mail2", "type": "string", "semantic_type": "email", "depends_on": "bio"},
    )
    t = chunk(s, 200)
    assert all(re.fullmatch(r"ann\.marie\.o\.neil\d{0,2}@\S+", e) for e in t["email"].to_pylist())
    assert t["mail2"].null_count == 0
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+\d{0,2}@[a-z.]+", e) for e in t["mail2"].to_pylist())


def test_vocabularies_come_from_faker():
    s = schema(
        {"name": "first", "type": "string", "semantic_type": "first_name"},
        {"name": "full", "type": "string", "semantic_type": "full_name"},
        {"name": "cur", "type": "string", "semantic_type": "currency_code"},
        {"name": "country", "type": "string", "semantic_type": "country"},
        {"name": "cc", "type": "string", "semantic_type": "country_code"},
        {"name": "job", "type": "string", "semantic_type": "job"},
        {"name": "email", "type": "string", "semantic_type": "email"},
        {"name": "street", "type": "string", "semantic_type": "street_address"},
        {"name": "w", "type": "string", "semantic_type": "word"},
        {"name": "plain", "type": "string"},
    )
    t = chunk(s, 3000)
    assert set(t["first"].to_pylist()) <= FIRST
    assert all(a in FIRST and b in LAST for a, b in (n.split(" ") for n in t["full"].to_pylist()))
    assert set(t["cur"].to_pylist()) <= {code for code, _ in currency.Provider.currencies}
    assert set(t["country"].to_pylist()) <= set(address_us.Provider.countries)
    assert set(t["cc"].to_pylist()) <= set(address_us.Provider.alpha_2_country_codes)
    assert set(t["job"].to_pylist()) <= set(job_us.Provider.jobs)
    domains = set(internet_us.Provider.free_email_domains) | set(
        internet_us.Provider.safe_domain_names
    )
    assert {e.split("@")[1] for e in t["email"].to_pylist()} <= domains
    suffixes = set(address_us.Provider.street_suffixes)
    for street in t["street"].to_pylist():
        number, name, suffix = street.split(" ", 2)
        assert number.isdigit() and (name in FIRST or name in LAST) and suffix in suffixes
    assert set(t["w"].to_pylist()) <= WORDS and set(t["plain"].to_pylist()) <= WORDS
    assert len(set(t["first"].to_pylist())) > 200  # sampled across the list, not a few names


def test_sentences_and_paragraphs_are_built_from_lorem_words():
    s = schema(
        {"name": "s", "type": "string", "semantic_type": "sentence"},
        {"name": "p", "type": "string", "semantic_type": "paragraph"},
    )
    t = chunk(s, 500)
    sentences = t["s"].to_pylist()
    assert len(set(sentences)) == 500
    for sentence in sentences:
        words = sentence[:-1].split(" ")
        assert sentence.endswith(".") and sentence[0].isupper() and 6 <= len(words) <= 14
        assert {w.lower() for w in words} <= {w.lower() for w in WORDS}
    for paragraph in t["p"].to_pylist():
        parts = re.split(r"(?<=\.) ", paragraph)
        assert 3 <= len(parts) <= 6 and all(p.endswith(".") and p[0].isupper() for p in parts)


def test_formats_of_phone_ipv4_iban_uuid_url_postcode():
    s = schema(
        {"name": "phone", "type": "string", "semantic_type": "phone"},
        {"name": "ip", "type": "string", "semantic_type": "ipv4"},
        {"name": "iban", "type": "string", "semantic_type": "iban"},
        {"name": "token", "type": "uuid"},
        {"name": "url", "type": "string", "semantic_type": "url"},
        {"name": "zip", "type": "string", "semantic_type": "postcode"},
        {"name": "city", "type": "string", "semantic_type": "city"},
        {"name": "company", "type": "string", "semantic_type": "company"},
    )
    t = chunk(s, 2000)
    assert all(re.fullmatch(r"\([2-9]\d\d\) [2-9]\d\d-\d{4}", p) for p in t["phone"].to_pylist())
    for ip in t["ip"].to_pylist():
        octets = [int(o) for o in ip.split(".")]
        assert len(octets) == 4 and all(0 <= o <= 255 for o in octets) and octets[0] >= 1
    for iban in t["iban"].to_pylist():
        assert re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", iban)
        rearranged = iban[4:] + iban[:4]
        assert int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1, iban
    assert len({i[:2] for i in t["iban"].to_pylist()}) > 5
    for token in t["token"].to_pylist():
        parsed = uuid.UUID(token)
        assert str(parsed) == token and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert all(re.fullmatch(r"https://www\.[a-z]+\.[a-z]+", u) for u in t["url"].to_pylist())
    assert all(re.fullmatch(r"\d{5}", z) for z in t["zip"].to_pylist())
    assert all(c and c[0].isupper() for c in t["city"].to_pylist())
    assert all(c.split(re.split(r"[ ,-]", c)[0])[0] == "" for c in t["company"].to_pylist())


# ---- patterns


@pytest.mark.parametrize(
    "pattern",
    [
        r"[A-Z]{3}-\d{4}",
        r"(foo|bar)_[a-z]{2,5}",
        r"ORD-[0-9]{6}",
        r"^\w+@[a-z]+\.(com|org)$",
        r"[^a-z\s]{2}.\s?x*y+z{1,}",
        r"(ab|c(d|e){2})?[ÄÖÜäöü]{1,3}é",
        r"\D\W\S[\d_]{0,2}",
    ],
)
def test_pattern_values_fullmatch(pattern):
    s = schema({"name": "code", "type": "string", "pattern": pattern})
    got = values(s, "code", 500)
    assert all(re.fullmatch(pattern, v) for v in got)
    assert len(set(got)) > 1


@pytest.mark.parametrize(
    ("pattern", "what"),
    [(r"(?=a)b", "lookahead"), (r"(a)\1", "backreference"), (r"(?<!x)y", "lookaround")],
)
def test_unsupported_patterns_raise_schema_error_naming_the_column(pattern, what):
    s = schema({"name": "code", "type": "string", "pattern": pattern})
    with pytest.raises(SchemaError, match=what) as info:
        chunk(s, 5)
    assert info.value.field == "columns.code.pattern" and "'code'" in str(info.value)


def test_depends_on_and_semantic_type_misuse_raise_schema_error():
    bad_depends = schema(
        {"name": "a", "type": "integer"},
        {"name": "b", "type": "integer", "depends_on": "a"},
    )
    with pytest.raises(SchemaError) as info:
        check_schema(bad_depends)
    assert info.value.field == "columns.b.depends_on"
    cycle = schema(
        {"name": "a", "type": "string", "semantic_type": "email", "depends_on": "b"},
        {"name": "b", "type": "string", "semantic_type": "username", "depends_on": "a"},
    )
    with pytest.raises(SchemaError, match="cycle"):
        check_schema(cycle)
    bad_semantic = schema({"name": "e", "type": "integer", "semantic_type": "email"})
    with pytest.raises(SchemaError, match="type string"):
        chunk(bad_semantic, 5)


# ---- tables, processes, the SynthAIx example


def test_parallel_generate_table_equals_inline_in_chunk_order():
    seen: list[tuple[int, int]] = []
    inline = list(generate_table(MIXED, total_rows=2500, chunk_size=700, seed=11))
    parallel = list(
        generate_table(
            MIXED,
            total_rows=2500,
            chunk_size=700,
            seed=11,
            max_workers=2,
            on_chunk=lambda i, n: seen.append((i, n)),
        )
    )
    assert [i for i, _ in parallel] == [0, 1, 2, 3]
    assert seen == [(0, 700), (1, 700), (2, 700), (3, 400)]
    for (_, a), (_, b) in zip(inline, parallel, strict=True):
        assert a.equals(b)
    assert pa.concat_tables(t for _, t in parallel)["id"].to_pylist() == list(range(1, 2501))


def test_keyed_chunks_carry_the_keys_of_their_own_rows_from_the_workers():
    """The worker processes hash each chunk for exact dedup; the keys are the chunk's own."""
    inline = list(generate_table(MIXED, total_rows=2500, chunk_size=700, seed=11))
    keyed = list(
        generate_keyed_table(MIXED, total_rows=2500, chunk_size=700, seed=11, max_workers=2)
    )
    assert [i for i, _, _ in keyed] == [0, 1, 2, 3]
    for (_, table), (_, same, keys) in zip(inline, keyed, strict=True):
        assert table.equals(same)
        expected = table_keys(table)
        assert set(keys) == set(table.column_names)
        for name, (values, valid) in expected.items():
            assert np.array_equal(keys[name][0], values) and np.array_equal(keys[name][1], valid)


def test_schema_errors_in_worker_processes_reach_the_caller():
    s = schema(
        {"name": "id", "type": "integer", "semantic_type": "id", "unique": True, "max": 1500}
    )
    with pytest.raises(SchemaError, match="passes max") as info:
        list(generate_table(s, total_rows=2000, chunk_size=500, seed=1, max_workers=2))
    assert info.value.field == "columns.id.max"


def test_synthaix_example_schema_10k_rows():
    s = TableSchema.parse(
        {
            "name": "transactions",
            "columns": [
                {"name": "user_id", "type": "integer", "semantic_type": "id", "unique": True},
                {
                    "name": "amount",
                    "type": "float",
                    "min": 0.01,
                    "max": 5000,
                    "distribution": "lognormal",
                    "mean": 4,
                    "std": 1,
                    "decimals": 2,
                },
                {"name": "currency", "type": "string", "semantic_type": "currency_code"},
                {"name": "timestamp", "type": "datetime"},
            ],
        }
    )
    t = pa.concat_tables(
        table for _, table in generate_table(s, total_rows=10_000, chunk_size=4096, seed=42)
    )
    assert t.num_rows == 10_000 and t.column_names == ["user_id", "amount", "currency", "timestamp"]
    assert t["user_id"].to_pylist() == list(range(1, 10_001))
    amount = np.array(t["amount"].to_pylist())
    assert amount.min() >= 0.01 and amount.max() <= 5000 and np.allclose(amount, amount.round(2))
    assert pc.all(pc.match_substring_regex(t["currency"], r"^[A-Z]{3}$")).as_py()
    assert t["timestamp"].type == pa.timestamp("us", tz="UTC") and t["timestamp"].null_count == 0


def test_core_never_imports_dagster():
    import ast
    from pathlib import Path

    import synth_pipelines.core as core

    offenders = []
    for path in Path(core.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "dagster"]
    assert offenders == []
