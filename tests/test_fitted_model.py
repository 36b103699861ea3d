"""A model fitted to a sample: marginals, correlations, nulls, rare categories, constraints,
seasonality, reproducibility, no raw rows kept, and sampling on the generator's chunk path."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp, spearmanr

from synth_pipelines.core.tabular.fitted.infer import infer_schema
from synth_pipelines.core.tabular.fitted.model import fit_model
from synth_pipelines.core.tabular.generator import generate_chunk, generate_table
from synth_pipelines.core.tabular.schema import SchemaError, TableSchema
from tests.fitted_samples import PLACES, mixed_tables


def fitted(df: pd.DataFrame, **kwargs) -> TableSchema:
    return fit_model(df, infer_schema(df), seed=0, **kwargs)


def sample(schema: TableSchema, rows: int = 20_000, seed: int = 1) -> pd.DataFrame:
    table = generate_chunk(schema, rows=rows, seed=seed, chunk_index=0, row_offset=0)
    return table.to_pandas()


@pytest.fixture(scope="module")
def numbers() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    z = rng.multivariate_normal([0, 0, 0], [[1, 0.8, -0.3], [0.8, 1, -0.5], [-0.3, -0.5, 1]], 3000)
    return pd.DataFrame(
        {
            "height": (170 + 10 * z[:, 0]).round(1),
            "weight": np.exp(4.2 + 0.25 * z[:, 1]).round(2),  # skewed
            "score": np.where(z[:, 2] > 0, 60 + 8 * z[:, 2], 30 + 5 * z[:, 2]),  # two modes
            "visits": rng.poisson(np.exp(1 + 0.5 * z[:, 0])),
        }
    )


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return mixed_tables(seed=4, customers=1500)["customers"]


def test_marginals_and_correlations_of_numbers_are_kept(numbers):
    out = sample(fitted(numbers))
    for name in numbers.columns:
        assert ks_2samp(numbers[name], out[name]).statistic < 0.04, name
    real = spearmanr(numbers).statistic
    synthetic = spearmanr(out[numbers.columns]).statistic
    assert np.abs(real - synthetic).max() < 0.05
    assert out["visits"].dtype == np.int64 and (out["visits"] >= 0).all()
    assert (out["height"].round(1) == out["height"]).all()  # the sample's decimals


def test_categories_nulls_booleans_and_conditioning_follow_the_sample(customers):
    schema = fitted(customers)
    assert schema.fitted.condition == "segment"
    out = sample(schema)
    for name in ("segment", "city", "churned"):
        real = customers[name].value_counts(normalize=True)
        synthetic = out[name].value_counts(normalize=True).reindex(real.index, fill_value=0)
        assert (real - synthetic).abs().sum() / 2 < 0.03, name
    assert abs(out["income"].isna().mean() - customers["income"].isna().mean()) < 0.015
    real_age = customers.groupby("segment")["age"].mean()
    synthetic_age = out.groupby("segment")["age"].mean()
    assert (real_age - synthetic_age).abs().max() < 1.5
    real_income = customers.groupby("segment")["income"].median()
    assert (out.groupby("segment")["income"].median() / real_income - 1).abs().max() < 0.06


def test_constraints_hold_on_every_row(customers):
    orders = mixed_tables(seed=4, customers=600)["orders"]
    schema = fitted(orders)
    assert [(c.low, c.high) for c in schema.constraints if c.kind == "inequality"] == [
        ("ordered_at", "shipped_at")
    ]
    out = sample(schema)
    assert (out["shipped_at"] >= out["ordered_at"]).all()
    for name in ("amount", "quantity"):
        assert out[name].between(orders[name].min(), orders[name].max()).all()
    people = fitted(customers)
    assert any(c.kind == "fixed_combinations" for c in people.constraints)
    pairs = set(zip(*(sample(people, 5000)[k] for k in ("city", "country")), strict=True))
    assert pairs <= set(PLACES)


def test_datetime_weekday_and_hour_shares_are_kept(customers):
    out = sample(fitted(customers))
    for part in ("weekday", "hour"):
        real = getattr(customers["signup_at"].dt, part).value_counts(normalize=True)
        synthetic = getattr(out["signup_at"].dt, part).value_counts(normalize=True)
        assert (real - synthetic.reindex(real.index, fill_value=0)).abs().max() < 0.03, part


def test_rare_categories_are_merged_into_other_and_never_generated():
    rng = np.random.default_rng(0)
    plans = rng.choice(["basic", "plus", "pro"], 400).astype(object)
    plans[:3] = "vip-alice"  # 3 rows: under the minimum count
    plans[3:5] = "vip-bob"
    plans[5:8] = "vip-carol"  # together 8 rows: "other"
    df = pd.DataFrame({"plan": plans, "spend": rng.gamma(2, 10, 400)})
    schema = fitted(df, min_category_count=5)
    text = schema.model_dump_json()
    assert "vip-" not in text
    assert schema.column("plan").categories[-1] == "other"
    out = sample(schema, 5000)
    assert set(out["plan"]) == {"basic", "plus", "pro", "other"}


def test_no_raw_row_nor_value_in_the_model():
    rng = np.random.default_rng(11)
    df = pd.DataFrame(rng.normal(size=(300, 4)) * [1, 10, 100, 1000], columns=list("abcd"))
    model = fitted(df).fitted.model_dump_json()
    stored = {float(v) for v in _numbers(json.loads(model))}
    extremes = {float(df[c].min()) for c in df} | {float(df[c].max()) for c in df}
    raw = {float(v) for v in df.to_numpy().ravel()}
    assert raw & stored <= extremes  # only each column's min and max (also in the schema)
    for row in df.to_numpy():
        assert sum(float(v) in stored for v in row) <= 1


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, float | int) and not isinstance(value, bool):
        yield value


def test_fit_and_sample_are_reproducible_by_seed(customers):
    a, b = fitted(customers), fitted(customers)
    assert a.model_dump_json() == b.model_dump_json()
    assert sample(a, 2000, seed=5).equals(sample(b, 2000, seed=5))
    assert not sample(a, 2000, seed=5).equals(sample(a, 2000, seed=6))


def test_chunks_in_worker_processes_match_inline_and_pii_is_generated(customers):
    schema = fitted(customers)
    assert {c.name: c.semantic_type for c in schema.columns}["email"] == "email"
    inline = [t for _, t in generate_table(schema, total_rows=9000, chunk_size=3000, seed=2)]
    pooled = generate_table(schema, total_rows=9000, chunk_size=3000, seed=2, max_workers=2)
    for (_, a), b in zip(pooled, inline, strict=True):
        assert a.equals(b)
    out = pd.concat([t.to_pandas() for t in inline])
    assert out["customer_id"].is_unique
    assert not set(out["email"]) & set(customers["email"])  # made up, never copied


def test_an_edited_fitted_column_names_itself_and_a_dropped_one_leaves_the_model(customers):
    schema = fitted(customers)
    data = schema.model_dump()
    data["columns"] = [c for c in data["columns"] if c["name"] != "income"]
    out = sample(TableSchema.model_validate(data), 500)
    assert "income" not in out.columns and out["age"].notna().all()
    for c in data["columns"]:
        if c["name"] == "age":
            c["type"] = "float"
    with pytest.raises(SchemaError, match=r"age.*refit") as caught:
        generate_chunk(
            TableSchema.model_validate(data), rows=10, seed=0, chunk_index=0, row_offset=0
        )
    assert caught.value.field == "columns.age.type"


def test_an_edited_bound_clips_the_fitted_values(customers):
    data = fitted(customers).model_dump()
    for c in data["columns"]:
        if c["name"] == "age":
            c["max"] = 40
    out = sample(TableSchema.model_validate(data), 2000)
    assert out["age"].max() == 40


def test_constraints_are_validated_and_an_inequality_holds_without_a_model():
    columns = [
        {"name": "start", "type": "date", "min": "2024-01-01", "max": "2024-12-31"},
        {"name": "end", "type": "date", "min": "2024-01-01", "max": "2024-12-31"},
        {"name": "city", "type": "category", "categories": ["a", "b"]},
    ]
    ok = TableSchema.parse(
        {"columns": columns, "constraints": [{"kind": "inequality", "low": "start", "high": "end"}]}
    )
    out = sample(ok, 2000)
    assert (out["end"] >= out["start"]).all() and out["start"].nunique() > 300
    bad = {"kind": "inequality", "low": "start", "high": "city"}
    with pytest.raises(SchemaError, match="two date columns, not date and category"):
        TableSchema.parse({"columns": columns, "constraints": [bad]})
    missing = {"kind": "fixed_combinations", "columns": ["city", "country"]}
    with pytest.raises(SchemaError, match="'country', which is not a column"):
        TableSchema.parse({"columns": columns, "constraints": [missing]})
