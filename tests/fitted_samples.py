"""Seeded samples for the fitted-table tests and benchmark: a mixed customers table (ids,
names, emails, categories, a city fixed to its country, numbers that depend on the segment,
nulls, datetimes with a weekday pattern) and its orders (a foreign key, a count per customer
that follows the segment, shipped_at >= ordered_at)."""

import numpy as np
import pandas as pd

FIRST = ["Ann", "Bob", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hana", "Ivo", "Jill", "Kai", "Lea"]
LAST = ["Smith", "Jones", "Brown", "Taylor", "Wilson", "Evans", "Moore", "Clark", "Hall"]
PLACES = [("Paris", "France"), ("Lyon", "France"), ("Berlin", "Germany"), ("Munich", "Germany")]
PLACES += [("Madrid", "Spain"), ("Rome", "Italy")]
SEGMENTS = {"consumer": (0.5, 35, 3.6, 10.3), "business": (0.3, 45, 2.0, 11.0)}
SEGMENTS |= {"enterprise": (0.2, 50, 1.0, 11.6)}  # share, mean age, orders per customer, log income


def mixed_tables(seed: int = 0, customers: int = 2000) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    names = list(SEGMENTS)
    segment = rng.choice(names, customers, p=[SEGMENTS[s][0] for s in names])
    params = np.array([SEGMENTS[s][1:] for s in segment])
    age = np.clip(rng.normal(params[:, 0], 9), 18, 90).round().astype(int)
    income = np.exp(rng.normal(params[:, 2] + (age - 40) * 0.01, 0.35)).round(2)
    income[rng.random(customers) < 0.1] = np.nan
    place = rng.integers(0, len(PLACES), customers)
    first, last = rng.choice(FIRST, customers), rng.choice(LAST, customers)
    days = rng.integers(0, 730, customers)
    weekend = (pd.Timestamp("2023-01-01") + pd.to_timedelta(days, "D")).weekday >= 5
    days = np.where(weekend & (rng.random(customers) < 0.7), days - 2, days).clip(
        0
    )  # fewer weekends
    hours = np.clip(rng.normal(13, 3, customers), 0, 23).astype(int)
    signup = pd.Timestamp("2023-01-01") + pd.to_timedelta(days, "D") + pd.to_timedelta(hours, "h")
    signup = signup + pd.to_timedelta(rng.integers(0, 3600, customers), "s")
    churn_p = 1 / (1 + np.exp(-(-1.0 - (age - 45) * 0.04)))
    table = pd.DataFrame(
        {
            "customer_id": np.arange(1, customers + 1),
            "full_name": [f"{a} {b}" for a, b in zip(first, last, strict=True)],
            "email": [
                f"{a.lower()}.{b.lower()}{i}@example.com"
                for i, (a, b) in enumerate(zip(first, last, strict=True))
            ],
            "segment": segment,
            "city": [PLACES[p][0] for p in place],
            "country": [PLACES[p][1] for p in place],
            "age": age,
            "income": income,
            "signup_at": signup,
            "churned": rng.random(customers) < churn_p,
        }
    )
    counts = rng.poisson(params[:, 1])
    parent = np.repeat(np.arange(customers), counts)
    n = len(parent)
    ordered = signup[parent] + pd.to_timedelta(rng.integers(0, 200 * 86_400, n), "s")
    ship_days = rng.gamma(2.0, 1.5, n)
    amount = np.exp(rng.normal(3.0 + 0.4 * (params[parent, 2] - 10.3), 0.6, n)).round(2)
    orders = pd.DataFrame(
        {
            "order_id": np.arange(1, n + 1),
            "customer_id": table["customer_id"].to_numpy()[parent],
            "ordered_at": ordered,
            "shipped_at": ordered + pd.to_timedelta((ship_days * 86_400).astype(int), "s"),
            "amount": amount,
            "status": rng.choice(["delivered", "returned", "cancelled"], n, p=[0.85, 0.1, 0.05]),
            "quantity": rng.integers(1, 6, n),
        }
    )
    return {"customers": table, "orders": orders}


def fitted_settings_env() -> dict[str, str]:
    """The settings of the fitted job tests: light embedder, one worker, a 1 MB sample limit, a
    fresh master key."""
    from synth_pipelines.core.security.crypto import generate_master_key

    return {
        "SYNTH_TABULAR_EMBEDDER": "hashing",
        "SYNTH_TABULAR_WORKERS": "1",
        "SYNTH_TABULAR_SAMPLE_MAX_MB": "1",
        "SYNTH_MASTER_KEY": generate_master_key(),
    }
