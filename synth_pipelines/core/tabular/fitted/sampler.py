"""Sampling a fitted model: vectorised, for one chunk of rows at a time.

`sample_columns(model, rows, rng, bounds=..., given=...)` returns each fitted column's values in
model space (numbers; days since 1970 for dates and datetimes; codes for categories and
booleans; NaN for nulls); `to_arrow` makes them the column's arrow array. `given` fixes some
columns (a child table's copies of its parent's columns): the other variables are drawn from
the copula conditional on them. Constraints hold by construction: an inequality's high column
is its low plus a non-negative difference, a fixed combination is one code.
"""

from datetime import date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import ndtri

from synth_pipelines.core.tabular.chunk import column_error
from synth_pipelines.core.tabular.fitted.copula import draw
from synth_pipelines.core.tabular.fitted.marginals import cdf, quantile, quantile_of_score
from synth_pipelines.core.tabular.fitted.spec import FittedColumn, FittedModel, fittable
from synth_pipelines.core.tabular.schema import Column, TableSchema

__all__ = ["check_fitted", "encode", "fitted_arrays", "sample_columns", "to_arrow"]

_EPS = 1e-9
_DAY_US = 86_400 * 10**6


def _components(model: FittedModel, rows: int, rng, given) -> np.ndarray:
    if model.condition is not None and given and model.condition in given:
        levels = given[model.condition]
        if model.column(model.condition).categories is None:  # numbers: their level's index
            known = np.asarray(model.levels, dtype=np.float64)
            index = np.searchsorted(known, np.nan_to_num(levels)).clip(0, len(known) - 1)
            levels = np.where(known[index] == levels, index, np.nan)
        out = np.where(np.isnan(levels), -1, levels).astype(np.int64)
        missing = out < 0
        if missing.any():
            out[missing] = _components(model, int(missing.sum()), rng, None)
        return out
    weights = np.cumsum([c.weight for c in model.components])
    picks = np.searchsorted(weights / weights[-1], rng.random(rows), side="right")
    return np.minimum(picks, len(weights) - 1)


def _variable_values(model: FittedModel, rows: int, rng, given) -> tuple[np.ndarray, np.ndarray]:
    """(values rows x variables in model space, component index per row)."""
    which = _components(model, rows, rng, given)
    keep = [i for i, v in enumerate(model.variables) if v != model.condition]
    by_variable = {col.variable: col.name for col in model.columns if given and col.name in given}
    out = np.full((len(model.variables), rows), np.nan)  # a variable's values contiguous
    for index, component in enumerate(model.components):
        at = np.flatnonzero(which == index)
        if not len(at):
            continue
        if len(at) == rows:  # one component: plain slices, no gathers
            at = slice(None)
        fixed = {}
        for j, variable in enumerate(keep):
            if variable in by_variable:
                x = given[by_variable[variable]][at]
                u = cdf(component.marginals[variable], np.nan_to_num(x), rng)
                u = np.where(np.isnan(x), 0.5, u)
                fixed[j] = ndtri(np.clip(u, _EPS, 1 - _EPS))
        z = draw(
            np.asarray(component.correlation),
            rows if isinstance(at, slice) else len(at),
            rng,
            fixed,
        )
        columns = np.ascontiguousarray(z.T)
        for j, variable in enumerate(keep):
            out[variable, at] = quantile_of_score(component.marginals[variable], columns[j])
    return out.T, which


def _order(model: FittedModel) -> list[FittedColumn]:
    done: dict[str, FittedColumn] = {}
    pending = list(model.columns)
    while pending:
        later = []
        for column in pending:
            if column.difference_of is None or column.difference_of in done:
                done[column.name] = column
            else:
                later.append(column)
        if len(later) == len(pending):  # a cycle cannot be fitted; decode as independent
            for column in later:
                done[column.name] = column
            break
        pending = later
    return list(done.values())


def _weekday(days: np.ndarray, shares: list[float], rng) -> np.ndarray:
    """Days moved (by at most 3) onto weekdays drawn from `shares`: the week stays, the
    weekday pattern (weekend lulls) is the sample's."""
    cum = np.cumsum(shares)
    target = np.minimum(np.searchsorted(cum / cum[-1], rng.random(len(days)), "right"), 6)
    current = (np.floor(days).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    return days + ((target - current + 3) % 7) - 3


def _time_of_day(column: FittedColumn, rows: int, rng) -> np.ndarray:
    season = column.seasonality
    if season is None or season.hour is None:
        return np.zeros(rows)
    cum = np.cumsum(season.hour)
    hour = np.minimum(np.searchsorted(cum / cum[-1], rng.random(rows), "right"), 23)
    step = season.resolution_seconds
    within = np.floor(rng.random(rows) * (3600 // step)) * step if step < 3600 else 0.0
    return (hour * 3600 + within) / 86_400


def sample_columns(
    model: FittedModel,
    rows: int,
    rng: np.random.Generator,
    *,
    bounds: dict[str, tuple[float | None, float | None]] | None = None,
    given: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Each fitted column's `rows` values in model space (NaN: null). `bounds` clip a column
    (model space, e.g. an edited min/max); `given` columns are fixed, the rest conditional."""
    bounds = bounds or {}
    values, which = _variable_values(model, rows, rng, given)
    out: dict[str, np.ndarray] = {}
    for column in _order(model):
        if given and column.name in given:
            out[column.name] = given[column.name].astype(np.float64)
            continue
        if column.name == model.condition:
            levels = np.asarray([c.level for c in model.components], dtype=np.float64)
            x = levels[which]
            if column.categories is None:
                x = np.asarray(model.levels, dtype=np.float64)[x.astype(np.int64)]
        elif column.combination is not None:
            combo = model.combinations[column.combination]
            x = values[:, combo.variable]
            position = combo.columns.index(column.name)
            lookup = {c: i for i, c in enumerate(column.categories or [])}
            codes = np.asarray([lookup[v[position]] for v in combo.values], dtype=np.float64)
            x = codes[np.nan_to_num(x).astype(np.int64)]
        else:
            x = values[:, column.variable]
        if column.difference_of is not None:
            low = out[column.difference_of]
            x = low + np.maximum(_rounded(column, x), 0.0)
            if column.fallback is not None and np.isnan(low).any():
                alone = np.isnan(low)
                x[alone] = quantile(column.fallback, rng.random(int(alone.sum())))
        elif column.type == "datetime":
            x = np.floor(x) + _time_of_day(column, rows, rng)
        if column.type in ("date", "datetime") and column.difference_of is None:
            season = column.seasonality
            if season is not None and season.weekday is not None:
                x = _weekday(x, season.weekday, rng)
        x = _rounded(column, x)
        low_bound, high_bound = bounds.get(column.name, (None, None))
        if low_bound is not None or high_bound is not None:
            x = np.clip(x, low_bound, high_bound)
        if column.difference_of is not None:  # the constraint wins over an edited bound
            x = np.where(
                np.isnan(out[column.difference_of]), x, np.fmax(x, out[column.difference_of])
            )
        if column.null_variable is not None:
            x = np.where(values[:, column.null_variable] >= 0.5, np.nan, x)
        out[column.name] = x
    return out


def _rounded(column: FittedColumn, x: np.ndarray) -> np.ndarray:
    if column.type == "date":
        return np.floor(x)
    if column.type == "datetime":
        step = (column.seasonality.resolution_seconds if column.seasonality else 1) / 86_400
        return np.round(x / step) * step
    if column.type == "integer":
        return np.rint(x)
    if column.type == "float" and column.decimals is not None:
        return np.round(x, column.decimals)
    return x


def to_arrow(column: FittedColumn, x: np.ndarray) -> pa.Array:
    """Model-space values as the arrow array of the column's type (NaN -> null)."""
    null = np.isnan(x)
    filled = np.where(null, 0, x)
    mask = null if null.any() else None
    if column.type == "integer":
        return pa.array(filled.astype(np.int64), pa.int64(), mask=mask)
    if column.type == "float":
        return pa.array(filled, pa.float64(), mask=mask)
    if column.type == "boolean":
        return pa.array(filled >= 0.5, pa.bool_(), mask=mask)
    if column.type == "date":
        return pa.array(np.floor(filled).astype(np.int32), pa.date32(), mask=mask)
    if column.type == "datetime":
        us = np.rint(filled * _DAY_US).astype(np.int64)
        return pa.array(us, pa.timestamp("us", tz="UTC"), mask=mask)
    cats = pa.array(column.categories or [""], pa.string())
    codes = pa.array(filled.astype(np.int64), mask=mask)
    return cats.take(codes)


def encode(column: FittedColumn, values: pa.Array | np.ndarray) -> np.ndarray:
    """Arrow values of a column (a parent's, given to a child) in this model's space."""
    array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    if column.type in ("integer", "float"):
        return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)
    if column.type == "boolean":
        return np.asarray(pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    if column.type in ("date", "datetime"):
        unit = 1 if column.type == "date" else _DAY_US
        raw = array.cast(pa.int32() if column.type == "date" else pa.int64())
        out = raw.to_numpy(zero_copy_only=False).astype(np.float64)
        out[np.asarray(array.is_null())] = np.nan
        return out / unit
    # A category's code is its position; values are compared as text, as they were fitted.
    text = array if pa.types.is_string(array.type) else pc.cast(array, pa.string())
    codes = pc.index_in(text, value_set=pa.array(column.categories or [], pa.string()))
    return np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.float64)  # nulls: NaN


def check_fitted(schema: TableSchema) -> None:
    """SchemaError for a fitted column whose type (or semantic type) was edited since the fit;
    a column dropped from the schema just leaves the model."""
    model = schema.fitted
    if model is None:
        return
    names = {c.name for c in model.columns}
    for column in schema.columns:
        if column.name not in names:
            continue
        was = model.column(column.name).type
        if column.type != was or not fittable(column):
            raise column_error(
                column,
                "type",
                f"was fitted to the sample as a {was} column without a semantic type: refit "
                "the table or change it back",
            )


def _bound(column: Column, which: str) -> float | None:
    value = column.bound(which)  # type: ignore[arg-type]
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp() / 86_400
    if isinstance(value, date):
        return float((value - date(1970, 1, 1)).days)
    return float(value)


def fitted_arrays(
    schema: TableSchema,
    rows: int,
    rng: np.random.Generator,
    given: dict[str, np.ndarray] | None = None,
) -> dict[str, pa.Array]:
    """The schema's fitted columns for one chunk, as arrow arrays (nulls included), clipped to
    the schema's min/max; also the model's hidden columns (names starting "__")."""
    model = schema.fitted
    if model is None:
        return {}
    present = {c.name: c for c in schema.columns}
    bounds = {
        name: (_bound(c, "min"), _bound(c, "max"))
        for name, c in present.items()
        if c.min is not None or c.max is not None
    }
    values = sample_columns(model, rows, rng, bounds=bounds, given=given)
    return {
        c.name: to_arrow(c, values[c.name])
        for c in model.columns
        if c.name in present or c.name.startswith("__")
    }
