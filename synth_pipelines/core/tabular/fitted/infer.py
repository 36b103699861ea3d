"""A table schema inferred from a sample: each column's type, meaning, nulls, bounds, and the
constraints between columns (inequalities, fixed combinations).

Types: boolean (true/false, yes/no), integer, float, date, datetime (ISO-like text or typed),
uuid, category (few distinct values) and string. Columns that identify someone or something are
never copied: unique integer or code columns become ids, and names, emails, phones, addresses,
IBANs, IPs, URLs and free text become their semantic types, which the text generators make up.
`warnings` says what the inference was unsure of.
"""

import re
from datetime import UTC

import numpy as np
import pandas as pd

from synth_pipelines.core.tabular.fitted.sample_io import SampleError, check_frame
from synth_pipelines.core.tabular.schema import NUMERIC, TEMPORAL, TableSchema

__all__ = ["infer_schema", "schema_names"]

CATEGORY_MAX = 50  # at most this many distinct values (and at most half the rows): a category
_BOOLEANS = [{"true", "false"}, {"yes", "no"}, {"t", "f"}, {"y", "n"}]
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_EMAIL = re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$")
_EMAIL_IN = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,20}$")
_PHONE_IN = re.compile(r"\+?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_URL = re.compile(r"^https?://")
_STREET = re.compile(
    r"^\d+\s+\w+.*\b(st|street|ave|avenue|rd|road|blvd|lane|ln|dr|drive|way|court|ct|place|pl)\b",
    re.I,
)
_CODE = re.compile(r"^[A-Za-z]{1,6}[-_]?\d+$")
_DATE_TEXT = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$"
)
_PERSON = re.compile(r"^[A-Z][a-z'.-]+( [A-Z][a-z'.-]+){1,2}$")
_ID_NAME = re.compile(r"(^|_)(id|key|uuid|guid|code|number|no)$", re.I)
_NAME_HINTS = [  # column-name hints, first match wins
    (re.compile(r"first_?name|given_?name|forename", re.I), "first_name"),
    (re.compile(r"last_?name|surname|family_?name", re.I), "last_name"),
    (re.compile(r"email|e_mail", re.I), "email"),
    (re.compile(r"phone|mobile|tel", re.I), "phone"),
    (re.compile(r"address|street", re.I), "street_address"),
    (re.compile(r"post_?code|zip", re.I), "postcode"),
    (re.compile(r"iban", re.I), "iban"),
    (re.compile(r"user_?name|login|handle", re.I), "username"),
    (re.compile(r"company|employer|organi[sz]ation", re.I), "company"),
    (re.compile(r"(^|_)ip(_?address)?$", re.I), "ipv4"),
    (re.compile(r"url|website", re.I), "url"),
    (re.compile(r"(^|_)(full_?)?name$|customer_?name|person", re.I), "full_name"),
    (re.compile(r"city|town", re.I), "city"),
    (re.compile(r"country", re.I), "country"),
]
_IDENTIFYING = {"first_name", "last_name", "full_name", "email", "phone", "street_address"}
_IDENTIFYING |= {"iban", "username", "ipv4", "postcode"}


def _identifier(name: str, index: int) -> str:
    clean = re.sub(r"[^A-Za-z0-9_]+", "_", str(name)).strip("_") or f"column_{index + 1}"
    if not re.match(r"[A-Za-z_]", clean):
        clean = f"c_{clean}"
    return clean[:63]


def schema_names(df: pd.DataFrame) -> dict[str, str]:
    """Column name in the schema -> the sample's header (made identifiers, kept distinct)."""
    names: dict[str, str] = {}
    for index, source in enumerate(df.columns):
        name = _identifier(source, index)
        while name in names:
            name = f"{name}_{index + 1}"[:63]
        names[name] = source
    return names


def _share(values: pd.Series, pattern: re.Pattern) -> float:
    return float(values.astype(str).str.match(pattern).mean()) if len(values) else 0.0


def _iso(value: pd.Timestamp, kind: str) -> str:
    if kind == "date":
        return value.date().isoformat()
    return value.tz_convert(UTC).isoformat() if value.tzinfo else value.isoformat()


def _column(name: str, series: pd.Series, warnings: list[str]) -> dict:
    n = len(series)
    values = series.dropna()
    spec: dict = {"name": name, "nullable": round(float(series.isna().mean()), 4)}
    distinct = values.nunique()
    text = values.astype(str).str.strip() if values.dtype == object else None
    lowered = set(text.str.lower().unique()) if text is not None else set()
    if pd.api.types.is_bool_dtype(values) or (lowered and any(lowered <= b for b in _BOOLEANS)):
        return spec | {"type": "boolean"}
    numeric = pd.api.types.is_numeric_dtype(values)
    if (
        not numeric
        and text is not None
        and text.str.match(r"^\s*[-+]?\d*\.?\d+([eE][-+]?\d+)?$").all()
    ):
        values, numeric = pd.to_numeric(text), True
    if numeric:
        floats = values.astype(np.float64)
        integral = bool(np.all(np.isclose(floats, np.round(floats))))
        unique = distinct == len(values) and spec["nullable"] == 0
        if integral and unique and (_ID_NAME.search(name) or np.all(np.diff(np.sort(floats)) == 1)):
            return spec | {"type": "integer", "semantic_type": "id", "unique": True,
                           "min": int(floats.min())}  # fmt: skip
        if integral and _ID_NAME.search(name) and distinct > 1:
            # a reference (a foreign key): ids drawn from its range, never fitted as a number
            warnings.append(f"{name}: read as a reference to another table's ids")
            return spec | {"type": "integer", "semantic_type": "id",
                           "min": int(floats.min()), "max": int(floats.max())}  # fmt: skip
        kind = "integer" if integral else "float"
        cast = int if integral else float
        return spec | {"type": kind, "min": cast(floats.min()), "max": cast(floats.max())}
    if pd.api.types.is_datetime64_any_dtype(values) or (
        text is not None and _share(text, _DATE_TEXT) == 1.0
    ):
        parsed = pd.to_datetime(values, utc=True, format="mixed")
        dated = (parsed.dt.normalize() == parsed).all() and not (
            text is not None and text.str.contains(r"[T ]\d{2}:").any()
        )
        kind = "date" if dated else "datetime"
        return spec | {
            "type": kind,
            "min": _iso(parsed.min(), kind),
            "max": _iso(parsed.max(), kind),
        }
    text = values.astype(str).str.strip()
    unique = distinct == len(values)
    if _share(text, _UUID) == 1.0:
        return spec | {"type": "uuid", "semantic_type": "id", "unique": unique}
    hinted = next((sem for pattern, sem in _NAME_HINTS if pattern.search(name)), None)
    few = distinct <= CATEGORY_MAX and distinct <= max(2, n // 2)
    by_value = None
    if _share(text, _EMAIL) > 0.9:
        by_value = "email"
    elif _share(text, _IBAN) > 0.9:
        by_value = "iban"
    elif _share(text, _IPV4) > 0.9:
        by_value = "ipv4"
    elif _share(text, _URL) > 0.9:
        by_value = "url"
    elif _share(text, _STREET) > 0.6:
        by_value = "street_address"
    elif _share(text, _PHONE) > 0.9 and text.str.count(r"\d").mean() >= 7:
        by_value = "phone"
    semantic = by_value or hinted
    if semantic in ("city", "country") and few:
        semantic = None  # a handful of places: categories, their shares fitted
    if semantic == "full_name" and by_value is None and _share(text, _PERSON) < 0.5:
        semantic = None if few else "full_name"
    if semantic is None and not few and _share(text, _PERSON) > 0.8:
        semantic = "full_name"
    if semantic is not None:
        if semantic in _IDENTIFYING:
            warnings.append(
                f"{name}: looks like {semantic} (personal data): generated, never copied"
            )
        return spec | {"type": "string", "semantic_type": semantic}
    if unique and spec["nullable"] == 0 and (_ID_NAME.search(name) or _share(text, _CODE) > 0.95):
        return spec | {"type": "string", "semantic_type": "id", "unique": True}
    if few:
        categories = [str(v) for v in text.value_counts().index]
        return spec | {"type": "category", "categories": categories}
    words = text.str.split().str.len()
    if words.mean() >= 3:
        carries = text.str.contains(_EMAIL_IN).any() or text.str.contains(_PHONE_IN).any()
        if carries:
            warnings.append(
                f"{name}: free text carrying personal data (emails or phone numbers): "
                "generated as lorem text, never copied"
            )
        return spec | {
            "type": "string",
            "semantic_type": "paragraph" if words.mean() > 25 else "sentence",
        }
    warnings.append(
        f"{name}: {distinct} distinct short texts, neither a category nor a known kind: "
        "generated as random words"
    )
    return spec | {"type": "string", "semantic_type": "word"}


def _inequalities(df: pd.DataFrame, columns: list[dict]) -> list[dict]:
    """`high >= low` pairs of number (or same-kind temporal) columns that hold on every row and
    are not implied by their ranges (the ranges overlap); each column is high at most once."""
    found: list[dict] = []
    highs: set[str] = set()
    candidates = [
        c for c in columns if c.get("semantic_type") is None and c["type"] in NUMERIC + TEMPORAL
    ]
    series = {}
    for c in candidates:
        raw = df[c["source"]]
        if c["type"] in TEMPORAL:
            series[c["name"]] = (
                pd.to_datetime(raw, utc=True, format="mixed").astype("int64").where(raw.notna())
            )
        else:
            series[c["name"]] = pd.to_numeric(raw, errors="coerce")
    for a in candidates:
        for b in candidates:
            if a is b or b["name"] in highs:
                continue
            if (a["type"] in TEMPORAL) != (b["type"] in TEMPORAL):
                continue
            if a["type"] in TEMPORAL and a["type"] != b["type"]:
                continue
            low, high = series[a["name"]], series[b["name"]]
            both = low.notna() & high.notna()
            if both.sum() < 10 or not (high[both] >= low[both]).all():
                continue
            if (high[both] == low[both]).all() or _chance(low[both], high[both]) < 0.05:
                continue  # equal columns, or an order the two ranges all but imply
            found.append({"kind": "inequality", "low": a["name"], "high": b["name"]})
            highs.add(b["name"])
    # keep the order acyclic and simple: a column is not both low and high of the same pair
    return found


def _chance(low: pd.Series, high: pd.Series) -> float:
    """How often `high < low` would hold by chance: for a high and a low from two random rows."""
    ordered = np.sort(high.to_numpy(dtype=np.float64))
    return float(
        np.searchsorted(ordered, low.to_numpy(dtype=np.float64), "left").mean() / len(ordered)
    )


def _combinations(df: pd.DataFrame, columns: list[dict]) -> list[dict]:
    """Category pairs where each value of one always comes with the same value of the other
    (city -> country): generated together, so no city lands in the wrong country."""
    cats = [c for c in columns if c["type"] == "category" and c.get("semantic_type") is None]
    used: set[str] = set()
    found = []
    for a in cats:
        for b in cats:
            if a is b or a["name"] in used or b["name"] in used:
                continue
            pair = df[[a["source"], b["source"]]].dropna().astype(str)
            if (
                pair[a["source"]].nunique() <= pair[b["source"]].nunique()
                or pair[b["source"]].nunique() < 2
            ):
                continue
            if (pair.groupby(a["source"])[b["source"]].nunique() == 1).all():
                found.append({"kind": "fixed_combinations", "columns": [a["name"], b["name"]]})
                used |= {a["name"], b["name"]}
    return found


def infer_schema(df: pd.DataFrame, *, name: str = "table") -> TableSchema:
    """The schema of the sample `df`: typed columns (ids and personal data marked with their
    semantic types), null shares, min/max, constraints, and warnings. SampleError for a frame
    that cannot be fitted (see `sample_io.check_frame`)."""
    check_frame(df)
    warnings: list[str] = []
    columns = []
    for column_name, source in schema_names(df).items():
        if column_name != source:
            warnings.append(f"column {source!r} is named {column_name!r} (letters, digits, _)")
        try:
            spec = _column(column_name, df[source], warnings)
        except (ValueError, TypeError, OverflowError) as exc:
            raise SampleError(
                f"sample.{source}", f"column {source!r} cannot be read: {exc}"
            ) from None
        columns.append(spec | {"source": source})
    names = {c.get("semantic_type"): c["name"] for c in reversed(columns)}
    person = names.get("full_name") or names.get("first_name")
    for c in columns:  # emails and usernames made from the same row's name
        if c.get("semantic_type") in ("email", "username") and person is not None:
            c["depends_on"] = person
    constraints = _inequalities(df, columns) + _combinations(df, columns)
    clean = [{k: v for k, v in c.items() if k != "source"} for c in columns]
    return TableSchema.parse(
        {"name": name, "columns": clean, "constraints": constraints, "warnings": warnings}
    )
