"""Run YAML tests on a table through Great Expectations 1.x (an ephemeral context and a pandas
datasource), one validation per `where` filter, and read each result back as a
`TableMeasurement`."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from synth_pipelines.core.checks.measurement import SAMPLE, TableMeasurement
from synth_pipelines.core.checks.spec import TestSpec

# Tables with these columns are face rows: a failure names the buckets it touches.
BUCKET_COLUMNS = ("gender", "age_group")


def _jsonable(value: Any) -> Any:
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _as_utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True, errors="coerce")


def expectation_for(
    spec: TestSpec, frame: pd.DataFrame, related: Callable[[str], pd.DataFrame], now: datetime
) -> tuple[str, dict[str, Any]]:
    """The GE expectation class name and kwargs that run `spec` on `frame`."""
    kwargs: dict[str, Any] = {"column": spec.column} if spec.column else {}
    kwargs.update(spec.kind.kwargs(spec, frame, related, now))
    return str(spec.kind.expectation), kwargs


def run_tests(
    specs: list[TestSpec],
    frame: pd.DataFrame,
    related: Callable[[str], pd.DataFrame] | None = None,
    now: datetime | None = None,
) -> list[TableMeasurement]:
    """Every spec's outcome on `frame`, in the order given. `related(asset)` loads the target
    table of a `relationships` test. Nothing raises for bad data: errors become outcomes. A
    column test on a frame without that column, or without rows (after its `where`), is not
    run: its measurement says why it has nothing to check."""
    now = now or datetime.now(UTC)
    related = related or (lambda asset: pd.DataFrame())
    outcomes: dict[str, TableMeasurement] = {}
    groups: dict[str | None, list[TestSpec]] = defaultdict(list)
    for spec in specs:
        if spec.column is not None and spec.column not in frame.columns:
            reason = f"no column {spec.column!r}"
            outcomes[spec.name] = TableMeasurement(spec, passed=False, skip_reason=reason)
        else:
            groups[spec.where].append(spec)
    if groups:
        frame = _normalise_datetimes(frame, [s for group in groups.values() for s in group])
    for where, group in groups.items():
        try:
            subset = frame.query(where, engine="python") if where else frame
        except Exception as exc:  # a user's expression: any pandas error is theirs to fix
            for spec in group:
                outcomes[spec.name] = TableMeasurement(spec, False, error=f"where {where!r}: {exc}")
            continue
        ge_specs = []
        for spec in group:
            if spec.column is not None and subset.empty:  # a column test with no row to test
                reason = f"no rows (where {where})" if where else "no rows"
                outcomes[spec.name] = TableMeasurement(spec, passed=False, skip_reason=reason)
            elif spec.kind.evaluate is not None:  # a kind our own code evaluates
                outcomes[spec.name] = spec.kind.evaluate(spec, subset)
            else:
                ge_specs.append(spec)
        if ge_specs:
            outcomes.update(_validate(ge_specs, subset, related, now))
    return [outcomes[spec.name] for spec in specs]


def _normalise_datetimes(frame: pd.DataFrame, specs: list[TestSpec]) -> pd.DataFrame:
    """Columns a test reads as timestamps (freshness), in UTC: SQLite hands back naive strings."""
    fresh = {s.column for s in specs if s.kind.reads_timestamps and s.column}
    if not fresh:
        return frame
    frame = frame.copy(deep=False)
    for column in fresh:
        frame[column] = _as_utc(frame[column])
    return frame


def _quiet_context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _validate(
    specs: list[TestSpec],
    frame: pd.DataFrame,
    related: Callable[[str], pd.DataFrame],
    now: datetime,
) -> dict[str, TableMeasurement]:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    outcomes: dict[str, TableMeasurement] = {}
    context = _quiet_context()  # GE needs a current context before a suite takes expectations
    suite = gx.ExpectationSuite(name="synth_checks")
    for spec in specs:
        try:
            class_name, kwargs = expectation_for(spec, frame, related, now)
            expectation = getattr(gxe, class_name)(**kwargs, meta={"check": spec.name})
        except Exception as exc:  # bad kwargs for a GE expectation, or a missing related table
            outcomes[spec.name] = TableMeasurement(spec, False, error=_first_line(exc))
            continue
        suite.add_expectation(expectation)
    if not suite.expectations:
        return outcomes
    batch = (
        context.data_sources.add_pandas("synth")
        .add_dataframe_asset("table")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    with_buckets = all(column in frame.columns for column in BUCKET_COLUMNS)
    result = batch.validate(
        suite,
        result_format={
            # COMPLETE lists every failing row, to name the buckets they are in (face tables).
            "result_format": "COMPLETE" if with_buckets else "SUMMARY",
            "partial_unexpected_count": SAMPLE,
        },
    )
    by_name = {spec.name: spec for spec in specs}
    for item in result.results:
        spec = by_name[item.expectation_config.meta["check"]]
        outcomes[spec.name] = _outcome(spec, item, frame if with_buckets else None)
    return outcomes


def _first_line(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {_first_line_text(exc)}"


def _outcome(spec: TestSpec, item: Any, face_rows: pd.DataFrame | None) -> TableMeasurement:
    config = item.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    result = item.result or {}
    raised = item.exception_info.get("raised_exception") if item.exception_info else False
    outcome = TableMeasurement(
        spec=spec,
        passed=bool(item.success),
        element_count=int(result.get("element_count", 0) or 0),
        unexpected_count=result.get("unexpected_count"),
        unexpected_percent=result.get("unexpected_percent"),
        sample=_jsonable(result.get("partial_unexpected_list", []))[:SAMPLE],
        observed=_jsonable(result.get("observed_value")),
        expectation={"type": config.type, "kwargs": _jsonable(_short_sets(kwargs))},
        error=_first_line_text(item.exception_info.get("exception_message")) if raised else None,
    )
    if raised:
        outcome.passed = False
    if face_rows is not None and not outcome.passed:
        index = result.get("unexpected_index_list")
        rows = face_rows.loc[index] if index else face_rows
        outcome.buckets = sorted(
            {f"{g}/{a}" for g, a in zip(rows["gender"], rows["age_group"], strict=True)}
        )
    return outcome


def _first_line_text(message: Any) -> str:
    lines = str(message or "").strip().splitlines()
    return re.sub(r"\s+", " ", lines[0]) if lines else "the expectation raised an error"


def _short_sets(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keep long value sets (a relationship's targets) readable in the UI."""
    out = dict(kwargs)
    for key, value in kwargs.items():
        if isinstance(value, list) and len(value) > 20:
            out[key] = [*value[:20], f"… {len(value) - 20} more"]
    return out
