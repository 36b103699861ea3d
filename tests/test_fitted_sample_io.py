"""Reading a sample and inferring its schema: encodings, Parquet, the errors that name the
column and the reason, and the types, ids and personal data the inference finds."""

import io
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synth_pipelines.core.tabular.fitted.infer import infer_schema
from synth_pipelines.core.tabular.fitted.sample_io import MIN_ROWS, SampleError, read_sample

LIMIT = 1_000_000


def csv(rows: int = 20, **columns) -> str:
    frame = pd.DataFrame(columns or {"city": ["Zürich", "Köln"] * (rows // 2), "n": range(rows)})
    return frame.to_csv(index=False)


def read(raw: bytes, filename: str = "sample.csv", limit: int = LIMIT) -> pd.DataFrame:
    return read_sample(raw, filename=filename, max_bytes=limit)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_csv_in_utf8_with_or_without_bom_and_utf16_reads_the_same(encoding):
    df = read(csv().encode(encoding))
    assert list(df.columns) == ["city", "n"]
    assert df["city"].iloc[0] == "Zürich" and df["n"].dtype == np.int64


def test_cp1252_is_refused_not_guessed():
    with pytest.raises(SampleError, match=r"unknown encoding.*UTF-8") as caught:
        read(csv().encode("cp1252"))
    assert caught.value.field == "sample"


def test_parquet_by_suffix_or_magic_bytes(tmp_path):
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": list(range(12)), "b": [1.5] * 12}), buffer)
    for name in ("data.parquet", "upload.bin"):
        assert read(buffer.getvalue(), name)["a"].tolist() == list(range(12))
    path = tmp_path / "x.parquet"
    path.write_bytes(buffer.getvalue())
    assert len(read_sample(path, filename=path.name, max_bytes=LIMIT)) == 12


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        (b"", "sample", "empty"),
        (b"\n\n", "sample", "empty"),
        (b"a,b\n", "sample", f"0 rows: a fit needs at least {MIN_ROWS}"),
        (b"1,2.5\n" * 20, "sample", r"no header row: its first row \(1, 2.5\) is numbers"),
        (b"a,b\n1,2\n", "sample", "1 row: a fit needs"),
        (csv(a=range(12), gone=[None] * 12).encode(), "sample.gone", "'gone' is entirely empty"),
        (
            csv(price=["1.5", "2", "3", "n/a?", "4", "five"] * 2).encode(),
            "sample.price",
            r"'price' mixes numbers \(1.5, 2, 3\) with text \(n/a\?, five\)",
        ),
    ],
)
def test_bad_samples_name_the_column_and_the_reason(raw, field, message):
    with pytest.raises(SampleError, match=message) as caught:
        read(raw)
    assert caught.value.field == field


def test_a_few_codes_among_text_are_not_mixed_types():
    codes = ["red", "blue", "green", "teal", "pink", "gray", "navy", "plum", "gold", "42"] * 2
    assert read(csv(colour=codes).encode())["colour"].tolist()[-1] == "42"


def test_over_the_size_limit_is_refused_before_reading(tmp_path):
    with pytest.raises(SampleError, match="over the limit of 100"):
        read(csv().encode(), limit=100)
    path = tmp_path / "big.csv"
    path.write_bytes(csv(rows=2000).encode())
    with pytest.raises(SampleError, match="over the limit"):
        read_sample(path, filename="big.csv", max_bytes=1000)


def test_inferred_types_ids_personal_data_and_nulls():
    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame(
        {
            "user_id": np.arange(100, 100 + n),
            "token": [str(uuid.UUID(int=int(v))) for v in rng.integers(0, 2**62, n)],
            "order_code": [f"ORD-{i:05d}" for i in range(n)],
            "name": [
                f"{a} {b}"
                for a, b in zip(
                    rng.choice(["Ann", "Bo", "Cy", "Di"], n),
                    rng.choice(["Li", "Ng", "Roe", "Sim", "Xu"], n),
                    strict=True,
                )
            ],
            "contact": [f"user{i}@mail.example.org" for i in range(n)],
            "phone": [
                f"(555) {rng.integers(200, 999)}-{rng.integers(1000, 9999)}" for _ in range(n)
            ],
            "note": [
                f"call me at user{i}@mail.example.org about the delivery please" for i in range(n)
            ],
            "store_id": rng.integers(1, 6, n),  # a reference to another table's ids
            "plan": rng.choice(["basic", "pro"], n),
            "active": rng.choice(["yes", "no"], n),
            "visits": rng.integers(0, 9, n),
            "spend": rng.gamma(2, 10, n).round(2),
            "day": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "seen_at": pd.date_range("2024-01-01 08:00", periods=n, freq="7h"),
        }
    )
    df.loc[::4, "spend"] = np.nan
    schema = infer_schema(df)
    got = {c.name: (c.type, c.semantic_type) for c in schema.columns}
    assert got == {
        "user_id": ("integer", "id"),
        "token": ("uuid", "id"),
        "order_code": ("string", "id"),
        "name": ("string", "full_name"),
        "contact": ("string", "email"),
        "phone": ("string", "phone"),
        "note": ("string", "sentence"),
        "store_id": ("integer", "id"),
        "plan": ("category", None),
        "active": ("boolean", None),
        "visits": ("integer", None),
        "spend": ("float", None),
        "day": ("date", None),
        "seen_at": ("datetime", None),
    }
    assert schema.column("spend").nullable == 0.25
    assert schema.column("contact").depends_on == "name"  # emails made from the row's name
    assert not schema.column("store_id").unique and schema.column("store_id").max <= 5
    assert schema.column("visits").min == df["visits"].min()
    assert schema.column("day").max == "2024-02-29"
    assert any("note" in w and "personal data" in w for w in schema.warnings)
