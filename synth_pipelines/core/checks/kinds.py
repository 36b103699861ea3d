"""Our YAML test vocabulary, one registration per kind in TEST_KINDS: dbt's tests (`not_null`,
`accepted_values`, `relationships`, …) mapped onto Great Expectations expectations with
`@expectation_test`, and tests our own code evaluates (`distribution`) with `@custom_test`.
Each registration brings everything about its kind: arguments, compile-time validation, the
description the UI shows, and how it runs. `kind_named` looks a name up here, then among GE's
expectations; anything else is an error naming what is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from synth_pipelines.core.checks.catalog import TestKind, ge_kind
from synth_pipelines.core.checks.measurement import TableMeasurement
from synth_pipelines.core.errors import InvalidInputError

if TYPE_CHECKING:
    from synth_pipelines.core.checks.spec import TableInfo, TestSpec

TEST_KINDS: dict[str, TestKind] = {}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class UnknownTestKindError(InvalidInputError):
    """A test name that is neither one of ours nor a Great Expectations expectation."""

    def __init__(self, name: str):
        super().__init__(
            f"unknown test {name!r}: use one of {', '.join(TEST_KINDS)} or a Great Expectations "
            "expectation name (expect_column_…)"
        )
        self.name = name


def kind_named(name: str) -> TestKind:
    """The kind a YAML file means by `name`: ours, else the GE expectation of that name."""
    kind = TEST_KINDS.get(name) or ge_kind(name)
    if kind is None:
        raise UnknownTestKindError(name)
    return kind


def _register(kind: TestKind) -> None:
    if kind.name in TEST_KINDS:
        raise ValueError(f"test kind {kind.name!r} is registered twice")
    TEST_KINDS[kind.name] = kind


def expectation_test(
    name: str,
    expectation: str,
    required: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    **options: Any,
) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Register the decorated `kwargs(spec, frame, related, now) -> dict` as the test `name`,
    run as the GE `expectation` with those keyword arguments (and `column`). `options`: the
    other TestKind fields (needs_column, validate, describe, reads_timestamps)."""

    def register(build: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        _register(TestKind(name, required, optional, expectation=expectation, kwargs=build,
                           **options))  # fmt: skip
        return build

    return register


def custom_test(
    name: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = (), **options: Any
) -> Callable[[Callable[..., TableMeasurement]], Callable[..., TableMeasurement]]:
    """Register the decorated `evaluate(spec, frame) -> TableMeasurement` as the test `name`,
    which our code runs on the (filtered) table. `options` as for `expectation_test`."""

    def register(evaluate: Callable[..., TableMeasurement]) -> Callable[..., TableMeasurement]:
        _register(TestKind(name, required, optional, evaluate=evaluate, **options))
        return evaluate

    return register


# --- compile-time validation: each raises ValueError with what is wrong ------------------------


def parse_duration(value: Any) -> float:
    """'90s', '15m', '48h', '7d', '2w' or a number of seconds → seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{value!r} is not a duration like '90s', '15m', '48h', '7d'")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def _values_listed(args: dict[str, Any], tables: dict[str, TableInfo]) -> None:
    if not (isinstance(args["values"], list) and args["values"]):
        raise ValueError("`values` must be a non-empty list")


def _bounds(args: dict[str, Any], tables: dict[str, TableInfo]) -> None:
    bounds = [args.get("min"), args.get("max")]
    if bounds == [None, None]:
        raise ValueError("give `min`, `max` or both")
    for bound in bounds:
        if bound is not None and not isinstance(bound, int | float | str):
            raise ValueError(f"bound {bound!r} is not a number or a date")
    low, high = bounds
    if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
        raise ValueError(f"min {low} > max {high}")


def _a_regex(args: dict[str, Any], tables: dict[str, TableInfo]) -> None:
    try:
        re.compile(str(args["pattern"]))
    except re.error as exc:
        raise ValueError(
            f"pattern {args['pattern']!r} is not a regular expression: {exc}"
        ) from None


def _a_duration(args: dict[str, Any], tables: dict[str, TableInfo]) -> None:
    parse_duration(args["max_age"])


def _shares(args: dict[str, Any], tables: dict[str, TableInfo]) -> None:
    shares = args["shares"]
    if not isinstance(shares, dict) or not shares:
        raise ValueError("`shares` must map each value to its expected share")
    if any(not isinstance(v, int | float) or not 0 <= v <= 1 for v in shares.values()):
        raise ValueError("every share must be a number in [0, 1]")
    if abs(sum(shares.values()) - 1) > 1e-6:
        raise ValueError(f"shares add up to {sum(shares.values()):g}, not 1")
    tolerance = args.get("tolerance", 0.05)
    if not isinstance(tolerance, int | float) or not 0 <= tolerance <= 1:
        raise ValueError("`tolerance` must be a number in [0, 1]")


def _a_target(args: dict[str, Any], tables: dict[str, TableInfo]) -> None:
    target, target_field = str(args["to"]), str(args["field"])
    info = tables.get(target)
    if info is None or not info.relationship_target:
        usable = sorted(k for k, v in tables.items() if v.relationship_target)
        raise ValueError(f"`to: {target}` is not a table it can refer to ({', '.join(usable)})")
    if info.columns is not None and target_field not in info.columns:
        raise ValueError(f"{target} has no column {target_field!r}")


def _bound(value: Any, series: pd.Series) -> Any:
    """A YAML bound in the column's terms: dates for datetime columns."""
    if value is not None and pd.api.types.is_datetime64_any_dtype(series):
        stamp = pd.Timestamp(value)
        return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return value


# --- the kinds ---------------------------------------------------------------------------------


@expectation_test(
    "not_null", "ExpectColumnValuesToNotBeNull", describe=lambda s, a: f"{s} has no nulls"
)
def _not_null(spec: TestSpec, frame: pd.DataFrame, related, now: datetime) -> dict[str, Any]:
    return {}


@expectation_test(
    "unique",
    "ExpectColumnValuesToBeUnique",
    describe=lambda s, a: f"{s} has no duplicate values",
)
def _unique(spec: TestSpec, frame: pd.DataFrame, related, now: datetime) -> dict[str, Any]:
    return {}


@expectation_test(
    "accepted_values",
    "ExpectColumnValuesToBeInSet",
    ("values",),
    ("quote",),
    validate=_values_listed,
    describe=lambda s, a: f"{s} is one of {a.get('values')}",
)
def _accepted_values(spec: TestSpec, frame, related, now: datetime) -> dict[str, Any]:
    return {"value_set": list(spec.args["values"])}


@expectation_test(
    "relationships",
    "ExpectColumnValuesToBeInSet",
    ("to", "field"),
    validate=_a_target,
    describe=lambda s, a: f"every {s} exists in {a.get('to')}.{a.get('field')}",
)
def _relationships(spec: TestSpec, frame, related, now: datetime) -> dict[str, Any]:
    target = related(str(spec.args["to"]))
    return {"value_set": target[str(spec.args["field"])].dropna().unique().tolist()}


@expectation_test(
    "range",
    "ExpectColumnValuesToBeBetween",
    (),
    ("min", "max", "inclusive"),
    validate=_bounds,
    describe=lambda s, a: f"{s} is within [{a.get('min', '-inf')}, {a.get('max', 'inf')}]",
)
def _range(spec: TestSpec, frame: pd.DataFrame, related, now: datetime) -> dict[str, Any]:
    series = frame[spec.column]
    kwargs = {
        "min_value": _bound(spec.args.get("min"), series),
        "max_value": _bound(spec.args.get("max"), series),
    }
    if spec.args.get("inclusive") is False:
        kwargs["strict_min"] = kwargs["strict_max"] = True
    return kwargs


@expectation_test(
    "regex",
    "ExpectColumnValuesToMatchRegex",
    ("pattern",),
    validate=_a_regex,
    describe=lambda s, a: f"{s} matches {a.get('pattern')!r}",
)
def _regex(spec: TestSpec, frame, related, now: datetime) -> dict[str, Any]:
    return {"regex": str(spec.args["pattern"])}


@expectation_test(
    "row_count",
    "ExpectTableRowCountToBeBetween",
    (),
    ("min", "max"),
    needs_column=False,
    validate=_bounds,
    describe=lambda s, a: f"row count within [{a.get('min', 0)}, {a.get('max', 'inf')}]",
)
def _row_count(spec: TestSpec, frame, related, now: datetime) -> dict[str, Any]:
    return {"min_value": spec.args.get("min"), "max_value": spec.args.get("max")}


@expectation_test(
    "freshness",
    "ExpectColumnMaxToBeBetween",
    ("max_age",),
    validate=_a_duration,
    describe=lambda s, a: f"newest {s} is at most {a.get('max_age')} old",
    reads_timestamps=True,
)
def _freshness(spec: TestSpec, frame, related, now: datetime) -> dict[str, Any]:
    oldest = now - timedelta(seconds=parse_duration(spec.args["max_age"]))
    return {"min_value": pd.Timestamp(oldest)}


@custom_test(
    "distribution",
    ("shares",),
    ("tolerance",),
    validate=_shares,
    describe=lambda s, a: f"shares of {s} within ±{a.get('tolerance', 0.05)} of {a['shares']}",
)
def _distribution(spec: TestSpec, frame: pd.DataFrame) -> TableMeasurement:
    """Share of each value within `tolerance` of its expected share (values not listed count
    as expected share 0)."""
    values = frame[spec.column].dropna().astype(str)
    observed = values.value_counts(normalize=True).to_dict() if len(values) else {}
    expected = {str(k): float(v) for k, v in spec.args["shares"].items()}
    tolerance = float(spec.args.get("tolerance", 0.05))
    off = {
        value: round(observed.get(value, 0.0), 4)
        for value in sorted(set(expected) | set(observed))
        if abs(observed.get(value, 0.0) - expected.get(value, 0.0)) > tolerance
    }
    return TableMeasurement(
        spec=spec,
        passed=not off and len(values) > 0,
        element_count=len(values),
        observed={k: round(v, 4) for k, v in observed.items()},
        sample=list(off),
        expectation={
            "type": "distribution",
            "kwargs": {"shares": expected, "tolerance": tolerance},
        },
        error=None if len(values) else "no non-null values to measure",
    )
