"""How good a fitted table is, in the words its users know: sdmetrics' quality report (column
shapes, column pair trends) and diagnostic report, ML utility (train on synthetic, test on real),
and privacy against a holdout the fit never saw (DCR share, identical matches, NNDR).

Every function takes plain pandas frames (the real sample, the synthetic rows) and the table's
`TableSchema` for the column types, and returns a JSON-ready dict. Big frames are subsampled to a
stated cap, seeded, and each result says how many rows it compared.

ML utility and privacy live in `utility.py` and `privacy.py`; they are imported here so that this
module is the one entry point.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from synth_pipelines.core.errors import FieldError
from synth_pipelines.core.tabular.fitted.frames import (
    MODELLED,
    PII_SDTYPES,
    canonical,
    cap_rows,
    json_number,
    schema_sdtypes,
    shared_columns,
)
from synth_pipelines.core.tabular.fitted.privacy import (
    PrivacyThresholds,
    privacy_report,
    privacy_verdict,
)
from synth_pipelines.core.tabular.fitted.utility import ml_utility
from synth_pipelines.core.tabular.schema import TableSchema

__all__ = [
    "REPORT_MAX_ROWS",
    "PrivacyThresholds",
    "diagnostic_report",
    "ml_utility",
    "privacy_report",
    "privacy_verdict",
    "quality_report",
    "sdmetrics_metadata",
    "split_holdout",
]

# sdmetrics' reports take ~1 s per 20k rows and a handful of columns; past that, subsample.
REPORT_MAX_ROWS = 20_000


def sdmetrics_metadata(schema: TableSchema) -> dict[str, Any]:
    """sdmetrics single-table metadata for the schema: {"columns": {name: {"sdtype": ...}},
    "primary_key": the first unique id column, when there is one}. PII columns carry "pii": True;
    datetimes name their format (ISO 8601) for the diagnostic report's format check."""
    columns: dict[str, dict[str, Any]] = {}
    primary_key = None
    sdtypes = schema_sdtypes(schema)
    for column in schema.columns:
        sdtype = sdtypes[column.name]
        entry: dict[str, Any] = {"sdtype": sdtype}
        if sdtype in PII_SDTYPES:
            entry["pii"] = True
        if sdtype == "id" and column.unique and primary_key is None:
            primary_key = column.name
        columns[column.name] = entry
    metadata: dict[str, Any] = {"columns": columns}
    if primary_key is not None:
        metadata["primary_key"] = primary_key
    return metadata


def split_holdout(
    df: pd.DataFrame, *, share: float = 0.5, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): a seeded random split, `share` of the rows held out. Fit on train only;
    the privacy checks measure the synthetic rows against both. Both keep the original index."""
    if not 0.0 < share < 1.0:
        raise FieldError("holdout_share", f"holdout share must be between 0 and 1, got {share}")
    if len(df) < 4:
        raise FieldError(
            "sample", f"a holdout split needs at least 4 rows, the sample has {len(df)}"
        )
    order = np.random.default_rng(seed).permutation(len(df))
    held = min(max(1, round(len(df) * share)), len(df) - 1)
    return df.iloc[np.sort(order[held:])], df.iloc[np.sort(order[:held])]


def quality_report(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema,
    *,
    max_rows: int = REPORT_MAX_ROWS,
    seed: int = 0,
) -> dict[str, Any]:
    """sdmetrics' QualityReport on the modelled columns (numbers, datetimes, categories,
    booleans; not ids, PII or free text).

    Returns {score (0-1: the mean of the two property scores), column_shapes, column_pair_trends,
    columns: {name: {metric, score}} (KSComplement / TVComplement), pairs: [{columns, metric,
    score, real_correlation, synthetic_correlation, real_association, meets_threshold}],
    rows_compared: {real, synthetic}, subsampled (bool), max_rows, seconds}.

    As in sdmetrics, only pairs whose real correlation (>= 0.5) or association (>= 0.3) meets
    its threshold count towards column_pair_trends (the others have score None); with no such
    pair, column_pair_trends is None and score is the column shapes score."""
    started = time.perf_counter()
    real_part, synthetic_part, metadata, rows = _report_inputs(
        real, synthetic, schema, max_rows, seed
    )
    from sdmetrics.reports import QualityReport  # imports torch (2 s): only when a report runs

    report = QualityReport()
    with warnings.catch_warnings():  # sdmetrics' own pandas FutureWarnings, not ours to act on
        warnings.simplefilter("ignore", FutureWarning)
        report.generate(real_part, synthetic_part, metadata, verbose=False)
    properties = _property_scores(report)
    shapes = report.get_details("Column Shapes")
    pairs = report.get_details("Column Pair Trends")
    return {
        "score": json_number(report.get_score()),
        "column_shapes": properties.get("Column Shapes"),
        "column_pair_trends": properties.get("Column Pair Trends"),
        "columns": {
            row["Column"]: {"metric": row["Metric"], "score": json_number(row["Score"])}
            for row in shapes.to_dict("records")
        },
        "pairs": [
            {
                "columns": [row["Column 1"], row["Column 2"]],
                "metric": row["Metric"],
                "score": json_number(row["Score"]),
                "real_correlation": json_number(row.get("Real Correlation")),
                "synthetic_correlation": json_number(row.get("Synthetic Correlation")),
                "real_association": json_number(row.get("Real Association")),
                "meets_threshold": bool(row.get("Meets Threshold?", True)),
            }
            for row in pairs.to_dict("records")
        ],
        **rows,
        "seconds": round(time.perf_counter() - started, 3),
    }


def diagnostic_report(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema,
    *,
    max_rows: int = REPORT_MAX_ROWS,
    seed: int = 0,
) -> dict[str, Any]:
    """sdmetrics' DiagnosticReport: are the synthetic values valid (within the real ranges and
    categories, keys unique) and is the table's structure the real one's.

    Returns {score, data_validity, data_structure, columns: {name: {metric: score}},
    columns_missing (schema columns the synthetic rows lack: left out of the report),
    rows_compared: {real, synthetic}, subsampled, max_rows, seconds}."""
    started = time.perf_counter()
    real_part, synthetic_part, metadata, rows = _report_inputs(
        real, synthetic, schema, max_rows, seed, modelled_only=False
    )
    from sdmetrics.reports import DiagnosticReport

    report = DiagnosticReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        report.generate(real_part, synthetic_part, metadata, verbose=False)
    properties = _property_scores(report)
    columns: dict[str, dict[str, float | None]] = {}
    for row in report.get_details("Data Validity").to_dict("records"):
        columns.setdefault(str(row["Column"]), {})[row["Metric"]] = json_number(row["Score"])
    return {
        "score": json_number(report.get_score()),
        "data_validity": properties.get("Data Validity"),
        "data_structure": properties.get("Data Structure"),
        "columns": columns,
        "columns_missing": [c.name for c in schema.columns if c.name not in synthetic.columns],
        **rows,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _report_inputs(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema,
    max_rows: int,
    seed: int,
    *,
    modelled_only: bool = True,
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], dict[str, Any], dict[str, Any]]:
    """The frames and metadata of sdmetrics' unified (multi-table) reports, one table named after
    the schema, both frames capped at max_rows, plus what was compared."""
    full_meta = sdmetrics_metadata(schema)
    present = set(shared_columns(real, synthetic))
    wanted = {
        name: entry
        for name, entry in full_meta["columns"].items()
        if name in present and (not modelled_only or entry["sdtype"] in MODELLED)
    }
    if not wanted:
        raise FieldError("schema", "no column of the schema is in both the real and synthetic rows")
    table_meta: dict[str, Any] = {"columns": wanted}
    if not modelled_only and full_meta.get("primary_key") in wanted:
        table_meta["primary_key"] = full_meta["primary_key"]
    sdtypes = {name: entry["sdtype"] for name, entry in wanted.items()}
    # Text-like sdtypes (ids, PII) compare as strings.
    forms = {
        name: s if s in ("numerical", "datetime", "boolean") else "categorical"
        for name, s in sdtypes.items()
    }
    real_part = canonical(cap_rows(real, max_rows, seed), forms)
    synthetic_part = canonical(cap_rows(synthetic, max_rows, seed + 1), forms)
    rows = {
        "rows_compared": {"real": len(real_part), "synthetic": len(synthetic_part)},
        "subsampled": len(real_part) < len(real) or len(synthetic_part) < len(synthetic),
        "max_rows": max_rows,
    }
    name = schema.name
    return {name: real_part}, {name: synthetic_part}, {"tables": {name: table_meta}}, rows


def _property_scores(report: Any) -> dict[str, float | None]:
    return {
        row["Property"]: json_number(row["Score"])
        for row in report.get_properties().to_dict("records")
    }
