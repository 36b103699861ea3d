"""The fitted model of a table, and `fit_model`, which fits it to a sample.

The model is a mixture of Gaussian copulas: one component per value of a conditioning column
(a category, boolean or few-valued number whose values change the other columns' distributions,
chosen at fit) or a single one. Each component holds every variable's marginal (see
`marginals`) and the copula's correlation matrix, shrunk towards the whole table's. Variables
are the fitted columns' values (numbers; dates and datetimes as days since 1970; category and
boolean codes), a null indicator per column with nulls, one code per fixed combination of
columns (city with its country), and for an inequality `high >= low` the difference
`high - low` instead of `high` (so the constraint holds by construction).

What is kept: quantile grids of smoothed distributions, category counts with rare categories
merged into "other" (or dropped when "other" would itself be rare), null rates, correlations,
weekday and hour shares of datetimes. No row of the sample, nor any value of a continuous
column other than its observed min and max, is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from synth_pipelines.core.tabular.fitted.copula import correlation, shrink
from synth_pipelines.core.tabular.fitted.marginals import (
    fit_continuous,
    fit_discrete,
    normal_scores,
)
from synth_pipelines.core.tabular.fitted.spec import (
    FITTED_TYPES,
    Combination,
    Component,
    FittedColumn,
    FittedModel,
    Seasonality,
    fittable,
)

if TYPE_CHECKING:
    from synth_pipelines.core.tabular.schema import TableSchema

__all__ = [
    "FITTED_TYPES",
    "Combination",
    "Component",
    "FittedColumn",
    "FittedModel",
    "Seasonality",
    "fit_frame",
    "fit_model",
    "fittable",
]

DISCRETE_MAX = 20  # a number with at most this many distinct values is discrete
_CONDITION_MAX_LEVELS = 12
# Every level of a conditioning column has at least this many rows, and this many per variable:
# a component fitted to fewer reproduces its rows' quirks (measured on load_wine: 30 rows a
# level lift the DCR share from 50% to 61%; load_breast_cancer, 106 rows for 31 variables:
# from 51% to 53%).
_CONDITION_MIN_ROWS = 50
_CONDITION_ROWS_PER_VARIABLE = 5
_CONDITION_MIN_GAIN = 0.05  # mean share of variance the levels explain
POOLED_ROWS = 1.0  # a component's correlations pulled towards the table's: this many x d rows
OTHER = "other"
_DAY_NS = 86_400 * 10**9


# --------------------------------------------------------------------------------------------
# From a frame to model-space arrays


def to_days(values: pd.Series) -> np.ndarray:
    """Dates/datetimes (naive read as UTC) as float days since 1970-01-01; NaN for nulls."""
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    ns = parsed.astype("int64").to_numpy().astype(np.float64)
    ns[parsed.isna().to_numpy()] = np.nan
    return ns / _DAY_NS


def _booleans(values: pd.Series) -> np.ndarray:
    words = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0, "t": 1.0, "f": 0.0, "1": 1.0}
    words |= {"0": 0.0, "y": 1.0, "n": 0.0, "1.0": 1.0, "0.0": 0.0}
    out = values.map(lambda v: np.nan if pd.isna(v) else words.get(str(v).strip().lower()))
    return out.astype(np.float64).to_numpy()


def _decimals(x: np.ndarray) -> int | None:
    for decimals in range(7):
        if np.allclose(np.round(x, decimals), x, rtol=0, atol=1e-9):
            return decimals
    return None


def _protected(values: pd.Series, min_count: int) -> tuple[list[str], dict[str, str | None]]:
    """Categories by frequency, those seen fewer than `min_count` times merged into "other"
    (dropped when "other" would hold fewer): (categories, raw value -> kept value)."""
    counts = values.dropna().astype(str).value_counts()
    rare = counts[counts < min_count]
    kept = [str(v) for v in counts.index if counts[v] >= min_count]
    mapping: dict[str, str | None] = {v: v for v in kept}
    if len(rare):
        merged = OTHER if rare.sum() >= min_count or OTHER in kept else None
        for value in rare.index:
            mapping[str(value)] = merged
        if merged is not None and OTHER not in kept:
            kept.append(OTHER)
    return kept, mapping


def _seasonality(values: pd.Series) -> Seasonality:
    parsed = pd.to_datetime(values.dropna(), utc=True, format="mixed")
    weekday = np.bincount(parsed.dt.weekday, minlength=7) / len(parsed)
    hour = np.bincount(parsed.dt.hour, minlength=24) / len(parsed)
    resolution = 86_400
    if (parsed.dt.second != 0).any() or (parsed.dt.microsecond != 0).any():
        resolution = 1
    elif (parsed.dt.minute != 0).any():
        resolution = 60
    elif (parsed.dt.hour != 0).any():
        resolution = 3600
    uneven = len(parsed) >= 70 and np.abs(weekday - 1 / 7).max() > 0.03
    return Seasonality(
        weekday=[float(w) for w in weekday] if uneven else None,
        hour=[float(h) for h in hour] if resolution < 86_400 else None,
        resolution_seconds=resolution,
    )


# --------------------------------------------------------------------------------------------
# Fitting


def fit_model(
    df: pd.DataFrame,
    schema: TableSchema,
    *,
    seed: int = 0,
    min_category_count: int = 5,
    hidden: dict[str, str] | None = None,
    condition_candidates: set[str] | None = None,
) -> TableSchema:
    """A copy of `schema` with `.fitted` set from the sample `df` (its fittable columns:
    numbers, booleans, categories, dates, datetimes; the schema's constraints hold on every
    sampled row). Category lists become the protected ones. Reproducible by `seed`.
    `hidden` (name -> type) are more columns of `df` the model holds but the table does not
    show (a parent's child counts, a child's copies of its parent's columns), named "__…";
    `condition_candidates` limits the columns the components may be conditioned on."""
    from synth_pipelines.core.tabular.fitted.infer import schema_names
    from synth_pipelines.core.tabular.fitted.sample_io import SampleError

    hidden = hidden or {}
    renames = {v: k for k, v in schema_names(df).items() if k not in df.columns}
    df = df.rename(columns={v: k for v, k in renames.items() if v not in hidden})
    columns = [c for c in schema.columns if fittable(c)]
    for column in columns:
        if column.name not in df.columns:
            raise SampleError(
                f"sample.{column.name}", f"column {column.name!r} is not in the sample"
            )
    model = fit_frame(
        df,
        {c.name: c.type for c in columns} | hidden,
        constraints=[c.model_dump() for c in schema.constraints],
        seed=seed,
        min_category_count=min_category_count,
        condition_candidates=condition_candidates,
    )
    updated = []
    for column in schema.columns:
        if column.type == "category" and fittable(column):
            cats = model.column(column.name).categories or [OTHER]
            column = column.model_copy(update={"categories": cats, "weights": None})
        updated.append(column)
    return schema.model_copy(update={"fitted": model, "columns": updated})


def fit_frame(
    df: pd.DataFrame,
    types: dict[str, str],
    *,
    constraints: list[dict] = (),
    seed: int = 0,
    min_category_count: int = 5,
    condition_candidates: set[str] | None = None,
) -> FittedModel:
    """The model of `df`'s columns `types` (name -> column type). `constraints` are
    `Constraint.model_dump()`s over these columns; `condition_candidates` limits the columns
    the components may be conditioned on (None: any)."""
    rng = np.random.default_rng([seed, 0xF17])
    n = len(df)
    fitted: dict[str, FittedColumn] = {}
    data: dict[str, np.ndarray] = {}  # variable name -> model-space values (NaN: null)
    discrete: dict[str, tuple[int, list[float] | None]] = {}  # variable -> (k, values)
    variables: list[str] = []

    def add(name: str, values: np.ndarray, k: tuple[int, list[float] | None] | None) -> int:
        variables.append(name)
        data[name] = values
        if k is not None:
            discrete[name] = k
        return len(variables) - 1

    combos = [c for c in constraints if c["kind"] == "fixed_combinations"]
    in_combo = {name for c in combos for name in c["columns"]}
    highs = {c["high"]: c["low"] for c in constraints if c["kind"] == "inequality"}
    raw: dict[str, np.ndarray] = {}
    for name, kind in types.items():
        column = FittedColumn(name=name, type=kind)
        series = df[name]
        if kind in ("integer", "float"):
            raw[name] = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
            present = raw[name][~np.isnan(raw[name])]
            column.decimals = 0 if kind == "integer" else _decimals(present)
        elif kind in ("date", "datetime"):
            raw[name] = to_days(series)
            if kind == "datetime":
                column.seasonality = _seasonality(series)
                if name not in highs:  # the day is the variable; the time comes from shares
                    raw[name] = np.floor(raw[name])
            else:
                column.seasonality = _seasonality(series)
                column.seasonality.hour = None
        elif kind == "boolean":
            raw[name] = _booleans(series)
            column.categories = ["false", "true"]
        else:
            column.categories, mapping = _protected(series, min_category_count)
            index = {c: i for i, c in enumerate(column.categories)}
            codes = [
                np.nan if pd.isna(v) or mapping.get(str(v)) is None else index[mapping[str(v)]]
                for v in series
            ]
            raw[name] = np.asarray(codes, dtype=np.float64)
        fitted[name] = column
    for name, column in fitted.items():
        if name in in_combo:
            continue
        values = raw[name]
        if name in highs:
            column.difference_of = highs[name]
            present = values[~np.isnan(values)]
            column.fallback = fit_continuous(present) if len(present) else None
            values = values - raw[highs[name]]
        present = values[~np.isnan(values)]
        if column.categories is not None:
            k = (len(column.categories), None)
        elif len(np.unique(present)) <= DISCRETE_MAX:
            k = (0, [float(v) for v in np.unique(present)])
        else:
            k = None
        column.variable = add(name if name not in highs else f"{name}-{highs[name]}", values, k)
    for index, combo in enumerate(combos):
        names = combo["columns"]
        cats = [fitted[c].categories or [] for c in names]
        codes = np.column_stack([raw[c] for c in names])
        whole = ~np.isnan(codes).any(axis=1)
        keys = pd.Series([tuple(int(v) for v in row) for row in codes[whole]])
        counts = keys.value_counts()
        counts = (
            counts[counts >= min_category_count] if (counts >= min_category_count).any() else counts
        )
        key_index = {key: i for i, key in enumerate(counts.index)}
        combo_codes = np.full(n, np.nan)
        combo_codes[whole] = [key_index.get(key, np.nan) for key in keys]
        values = [[cats[j][code] for j, code in enumerate(key)] for key in counts.index]
        variable = add("+".join(names), combo_codes, (len(values), None))
        for c in names:
            fitted[c].combination = index
        combos[index] = Combination(columns=names, values=values, variable=variable)
    for name, column in fitted.items():
        share = float(np.isnan(raw[name]).mean())
        if 0 < share < 1:
            column.null_variable = add(f"{name}?null", np.isnan(raw[name]).astype(float), (2, None))
    for name, (k, values) in list(discrete.items()):
        if k == 0:  # numbers with few distinct values: codes into `values`
            codes = np.searchsorted(np.asarray(values), data[name]).astype(float)
            codes[np.isnan(data[name])] = np.nan
            data[name] = codes
            discrete[name] = (len(values), values)

    matrix = np.column_stack([data[v] for v in variables])
    condition, levels, level_codes = _choose_condition(
        fitted, data, discrete, variables, matrix, rng, condition_candidates
    )
    keep = [i for i, v in enumerate(variables) if v != condition]
    whole = _component(matrix, keep, variables, discrete, rng)
    components = []
    if condition is None:
        components.append(whole)
    else:
        pooled = np.asarray(whole.correlation)
        for level in range(len(levels)):
            rows = level_codes == level
            part = _component(matrix[rows], keep, variables, discrete, rng, pooled_from=whole)
            part.level = level
            part.weight = float(rows.mean())
            part.correlation = shrink(
                np.asarray(part.correlation), part.rows, pooled, POOLED_ROWS * len(keep)
            ).tolist()
            components.append(part)
        # the conditioning column is fixed within a component: it has no variable
        fitted[condition].variable = None
    return FittedModel(
        sample_rows=n,
        seed=seed,
        variables=variables,
        columns=list(fitted.values()),
        combinations=combos,
        condition=condition,
        levels=levels,
        components=components,
    )


def _component(
    matrix: np.ndarray,
    keep: list[int],
    variables: list[str],
    discrete: dict[str, tuple[int, list[float] | None]],
    rng: np.random.Generator,
    pooled_from: Component | None = None,
) -> Component:
    """Marginals of every variable and the correlation of `keep`'s normal scores, on these
    rows (a variable with no value here takes the pooled marginal)."""
    marginals = []
    for i, name in enumerate(variables):
        values = matrix[:, i]
        present = values[~np.isnan(values)]
        if not len(present) and pooled_from is not None:
            marginals.append(pooled_from.marginals[i])
        elif name in discrete:
            k, numbers = discrete[name]
            marginals.append(fit_discrete(present, k, numbers))
        else:
            marginals.append(fit_continuous(present if len(present) else np.zeros(1)))
    scores = np.column_stack([normal_scores(matrix[:, i], rng) for i in keep])
    corr = correlation(scores)
    return Component(weight=1.0, rows=len(matrix), marginals=marginals, correlation=corr.tolist())


def _choose_condition(fitted, data, discrete, variables, matrix, rng, candidates):
    """The discrete column whose levels explain most of the continuous variables' variance
    (mean eta squared of their normal scores), when that is worth a component per level."""
    continuous = [i for i, v in enumerate(variables) if v not in discrete]
    if not continuous:
        return None, None, None
    scores = np.column_stack([normal_scores(matrix[:, i], rng) for i in continuous])
    best = (None, None, None, _CONDITION_MIN_GAIN)
    for name, column in fitted.items():
        if column.variable is None or variables[column.variable] != name:
            continue
        if name not in discrete or (candidates is not None and name not in candidates):
            continue
        codes = data[name]
        if np.isnan(codes).any() or column.null_variable is not None:
            continue
        counts = np.bincount(codes.astype(np.int64))
        counts = counts[counts > 0]
        least = max(_CONDITION_MIN_ROWS, _CONDITION_ROWS_PER_VARIABLE * len(variables))
        if not 2 <= len(counts) <= _CONDITION_MAX_LEVELS or counts.min() < least:
            continue
        gains = []
        for j in range(scores.shape[1]):
            z = scores[:, j]
            ok = ~np.isnan(z)
            if ok.sum() < 3 or z[ok].var() == 0:
                continue
            frame = pd.DataFrame({"z": z[ok], "g": codes[ok]})
            means = frame.groupby("g")["z"].transform("mean").to_numpy()
            gains.append(means.var() / z[ok].var())
        gain = float(np.mean(gains)) if gains else 0.0
        if gain > best[3]:
            numbers = discrete[name][1]
            if column.categories is not None:
                levels: list[Any] = list(column.categories)
            else:
                levels = list(numbers or [])
            best = (name, levels, codes.astype(np.int64), gain)
    return best[0], best[1], best[2]
