"""The frames the reports compare, and what each column of a fitted table is: its sdtype in
sdmetrics' words, and the real and synthetic frames put in one canonical form (numbers as float,
dates as naive UTC datetime64, categories as strings, nulls as NaN/NaT/None) so every metric reads
the same values.

The sdtypes: numerical, datetime, categorical, boolean (modelled: compared by the reports and the
privacy distances), id (keys), and the text sdtypes of PII and free text (made by the existing
text generators, never fitted, so compared by nothing).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from synth_pipelines.core.tabular.schema import Column, TableSchema

MODELLED = ("numerical", "datetime", "categorical", "boolean")
# Our semantic types as SDV/sdmetrics sdtypes (PII they know by name; the rest are plain text).
_PII_SDTYPES = {
    "first_name": "first_name",
    "last_name": "last_name",
    "full_name": "name",
    "email": "email",
    "phone": "phone_number",
    "street_address": "street_address",
    "city": "city",
    "country": "country",
    "country_code": "country_code",
    "postcode": "postcode",
    "currency_code": "currency_code",
    "company": "company",
    "job": "job",
    "url": "url",
    "domain": "domain_name",
    "ipv4": "ipv4_address",
    "username": "user_name",
    "iban": "iban",
}
PII_SDTYPES = frozenset(_PII_SDTYPES.values())


def column_sdtype(column: Column) -> str:
    """The sdmetrics sdtype of one schema column."""
    if column.semantic_type == "id" or column.type == "uuid":
        return "id"
    if column.type in ("integer", "float"):
        return "numerical"
    if column.type in ("date", "datetime"):
        return "datetime"
    if column.type == "boolean":
        return "boolean"
    if column.type == "category":
        return "categorical"
    # string: PII and free text are generated, not fitted; a plain string is a category.
    if column.semantic_type in _PII_SDTYPES:
        return _PII_SDTYPES[column.semantic_type]
    if column.semantic_type in ("word", "sentence", "paragraph"):
        return "text"
    return "id" if column.unique else "categorical"


def schema_sdtypes(schema: TableSchema) -> dict[str, str]:
    """Column name -> sdtype, in schema order."""
    return {column.name: column_sdtype(column) for column in schema.columns}


def inferred_sdtypes(df: pd.DataFrame) -> dict[str, str]:
    """Column name -> sdtype read from the frame's dtypes, when there is no schema: numbers,
    booleans, datetimes by dtype; text as categorical unless nearly every value is distinct
    (an id or free text: left out)."""
    kinds: dict[str, str] = {}
    for name in df.columns:
        series = df[name]
        if pd.api.types.is_bool_dtype(series):
            kinds[name] = "boolean"
        elif pd.api.types.is_numeric_dtype(series):
            kinds[name] = "numerical"
        elif pd.api.types.is_datetime64_any_dtype(series):
            kinds[name] = "datetime"
        else:
            values = series.dropna()
            distinct = values.nunique()
            if len(values) and values.map(type).eq(bool).all():
                kinds[name] = "boolean"
            elif distinct > max(50, 0.5 * len(values)):
                kinds[name] = "text"
            else:
                kinds[name] = "categorical"
    return kinds


def sdtypes_for(df: pd.DataFrame, schema: TableSchema | None) -> dict[str, str]:
    """The schema's sdtypes for the frame's columns, or the frame's own when there is no schema
    (a column of the frame the schema does not name is read from its dtype)."""
    inferred = inferred_sdtypes(df)
    if schema is None:
        return inferred
    known = schema_sdtypes(schema)
    return {name: known.get(name, inferred[name]) for name in df.columns}


def canonical(df: pd.DataFrame, sdtypes: dict[str, str]) -> pd.DataFrame:
    """The columns named in `sdtypes` in one form per sdtype: float, naive datetime64 (UTC),
    object strings, object booleans; nulls stay nulls. Values that do not parse become null."""
    out: dict[str, pd.Series] = {}
    for name, sdtype in sdtypes.items():
        series = df[name]
        if sdtype == "numerical":
            out[name] = pd.to_numeric(series, errors="coerce").astype(float)
        elif sdtype == "datetime":
            parsed = pd.to_datetime(series, utc=True, errors="coerce").dt.tz_localize(None)
            out[name] = parsed.astype("datetime64[ns]")
        elif sdtype == "boolean":
            out[name] = series.astype(object).where(series.notna(), None)
        else:
            out[name] = series.astype(str).astype(object).where(series.notna(), None)
    return pd.DataFrame(out, index=df.index)


def shared_columns(real: pd.DataFrame, synthetic: pd.DataFrame) -> list[str]:
    """The columns both frames hold, in the real frame's order."""
    return [name for name in real.columns if name in synthetic.columns]


def capped_positions(rows: int, max_rows: int, seed: int) -> np.ndarray | None:
    """The positions of a seeded sample of `max_rows` of `rows` rows, without replacement and in
    order; None when there are no more than `max_rows` (keep them all)."""
    if rows <= max_rows:
        return None
    return np.sort(np.random.default_rng(seed).choice(rows, size=max_rows, replace=False))


def cap_rows(df: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most max_rows rows: a seeded sample without replacement, kept in their original order."""
    keep = capped_positions(len(df), max_rows, seed)
    return df if keep is None else df.iloc[keep]


def as_float(series: pd.Series) -> np.ndarray:
    """A numeric or datetime column as floats (datetimes in seconds), nulls as NaN."""
    if pd.api.types.is_datetime64_any_dtype(series):
        seconds = series.astype("int64").to_numpy(dtype=float) / 1e9
        return np.where(series.isna().to_numpy(), np.nan, seconds)
    return series.to_numpy(dtype=float, na_value=np.nan)


def json_number(value: Any, digits: int = 6) -> float | None:
    """A rounded float for JSON; None for NaN or missing."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else round(number, digits)
