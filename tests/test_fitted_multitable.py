"""Tables joined by keys: referential integrity, child counts per parent, child rows
conditioned on their parent, a chain of three tables, and the errors for bad keys."""

import numpy as np
import pandas as pd
import pytest

from synth_pipelines.core.tabular.fitted.multitable import (
    BLOCK_ROWS,
    Relation,
    fit_tables,
    sample_tables,
)
from synth_pipelines.core.tabular.fitted.sample_io import SampleError
from tests.fitted_samples import mixed_tables

ORDERS = Relation(
    parent="customers", parent_key="customer_id", child="orders", child_key="customer_id"
)
ITEMS = Relation(parent="orders", parent_key="order_id", child="items", child_key="order_id")


@pytest.fixture(scope="module")
def sample() -> dict[str, pd.DataFrame]:
    tables = mixed_tables(seed=2, customers=1200)
    orders = tables["orders"]
    rng = np.random.default_rng(5)
    per_order = 1 + (orders["quantity"].to_numpy() > 3) + rng.integers(0, 2, len(orders))
    parent = np.repeat(np.arange(len(orders)), per_order)
    tables["items"] = pd.DataFrame(
        {
            "item_id": np.arange(1, len(parent) + 1),
            "order_id": orders["order_id"].to_numpy()[parent],
            "price": (orders["amount"].to_numpy()[parent] / per_order[parent]).round(2),
        }
    )
    return tables


@pytest.fixture(scope="module")
def fitted(sample):
    return fit_tables(sample, [ORDERS, ITEMS], seed=0)


@pytest.fixture(scope="module")
def synthetic(fitted) -> dict[str, pd.DataFrame]:
    return {k: v.to_pandas() for k, v in sample_tables(fitted, rows=3000, seed=1).items()}


def test_every_child_key_is_a_parent_key_down_the_chain(synthetic):
    customers, orders, items = synthetic["customers"], synthetic["orders"], synthetic["items"]
    assert len(customers) == 3000 and customers["customer_id"].is_unique
    assert orders["order_id"].is_unique and items["item_id"].is_unique
    assert orders["customer_id"].isin(customers["customer_id"]).all()
    assert items["order_id"].isin(orders["order_id"]).all()
    assert (orders["shipped_at"] >= orders["ordered_at"]).all()


def test_child_counts_and_child_rows_follow_the_parent(sample, synthetic):
    def per_segment(tables):
        joined = tables["orders"].merge(tables["customers"], on="customer_id")
        counts = joined.groupby("segment").size() / tables["customers"]["segment"].value_counts()
        return counts, joined.groupby("segment")["amount"].median()

    real_counts, real_amount = per_segment(sample)
    counts, amount = per_segment(synthetic)
    assert ((counts / real_counts) - 1).abs().max() < 0.1  # enterprise ~1 order, consumer ~3.6
    assert ((amount / real_amount) - 1).abs().max() < 0.1  # and spends more per order
    real_items = sample["items"].groupby("order_id").size().mean()
    assert abs(synthetic["items"].groupby("order_id").size().mean() - real_items) < 0.15


def test_sampling_is_reproducible_by_seed(fitted):
    a = sample_tables(fitted, rows=400, seed=9)
    b = sample_tables(fitted, rows=400, seed=9)
    assert all(a[name].equals(b[name]) for name in a)
    assert not a["orders"].equals(sample_tables(fitted, rows=400, seed=10)["orders"])


def test_each_block_of_rows_is_reported_as_it_is_made(fitted):
    blocks: list[tuple[str, int]] = []
    out = sample_tables(
        fitted, rows=BLOCK_ROWS + 10, seed=3, on_block=lambda t, n: blocks.append((t, n))
    )
    assert [(t, n) for t, n in blocks if t == "customers"] == [
        ("customers", BLOCK_ROWS), ("customers", 10)
    ]  # fmt: skip
    # a child's blocks are of its parents' rows: as many, and every row counted once
    for name, parents in (("orders", "customers"), ("items", "orders")):
        counts = [n for t, n in blocks if t == name]
        assert len(counts) == -(-out[parents].num_rows // BLOCK_ROWS)
        assert sum(counts) == out[name].num_rows
    assert [t for t, _ in blocks] == sorted((t for t, _ in blocks), key=fitted.order.index)


def test_the_fitted_tables_serialise_without_the_sample(fitted, sample):
    text = fitted.model_dump_json()
    assert "example.com" not in text and "Taylor" not in text
    assert type(fitted).model_validate_json(text) == fitted


def test_a_key_that_references_nothing_names_the_column_and_examples(sample):
    orders = sample["orders"].copy()
    orders.loc[:2, "customer_id"] = [99_001, 99_002, 99_003]
    with pytest.raises(
        SampleError, match=r"3 value\(s\) .* reference no customers.customer_id \(e.g. 99001"
    ) as caught:
        fit_tables({"customers": sample["customers"], "orders": orders}, [ORDERS])
    assert caught.value.field == "orders.customer_id"


def test_a_parent_key_that_repeats_and_a_cycle_are_refused(sample):
    customers = sample["customers"].copy()
    customers.loc[1, "customer_id"] = customers.loc[0, "customer_id"]
    with pytest.raises(SampleError, match="not a unique key") as caught:
        fit_tables({"customers": customers, "orders": sample["orders"]}, [ORDERS])
    assert caught.value.field == "customers.customer_id"
    back = Relation(
        parent="orders", parent_key="order_id", child="customers", child_key="customer_id"
    )
    with pytest.raises(SampleError, match="cycle"):
        fit_tables({"customers": sample["customers"], "orders": sample["orders"]}, [ORDERS, back])
