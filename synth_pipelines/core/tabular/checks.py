"""Checks a tabular job's schema implies, evaluated on its output table: not null, unique,
ranges, accepted categories, regex patterns. Each is one named check over every column it
applies to, with the failing columns, counts and a sample of failing values."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from synth_pipelines.core.tabular.schema import NUMERIC, TEMPORAL, TableSchema

CHECKS = ("not_null", "unique", "ranges", "accepted_categories", "pattern")
# A failed check of these means the output breaks its own schema: it blocks the job (and
# downstream use); the others warn.
BLOCKING = frozenset({"not_null", "unique", "ranges", "accepted_categories"})
SAMPLE = 5


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    columns_checked: list[str] = field(default_factory=list)
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)  # column → details

    @property
    def description(self) -> str:
        if not self.columns_checked:
            return f"{self.name}: no column has this constraint"
        if self.passed:
            return f"{self.name}: {', '.join(self.columns_checked)} pass"
        return f"{self.name} failed on {', '.join(self.failures)}"


def _sample(values: pa.Array) -> list[Any]:
    return [str(value) for value in values.slice(0, SAMPLE).to_pylist()]


def _fail(
    outcome: CheckOutcome,
    column: str,
    bad: pa.Array,
    total: int,
    count: int | None = None,
    **extra: Any,
) -> None:
    """Record `bad` (sampled) as the column's failure; `count` when it is not len(bad)."""
    count = len(bad) if count is None else count
    outcome.failures[column] = {
        "unexpected_count": count,
        "unexpected_percent": round(100.0 * count / total, 4) if total else 0.0,
        "sample": _sample(bad),
        **extra,
    }


def schema_checks(schema: TableSchema, table: pa.Table) -> list[CheckOutcome]:
    """Every check in CHECKS, in that order, on `table` (which must hold the schema's columns)."""
    outcomes = {name: CheckOutcome(name, True) for name in CHECKS}
    total = table.num_rows
    for column in schema.columns:
        values = table.column(column.name).combine_chunks()
        present = values.filter(pc.is_valid(values))
        if column.nullable == 0 and column.source == "local":
            outcomes["not_null"].columns_checked.append(column.name)
            if values.null_count:
                _fail(outcomes["not_null"], column.name, pa.array([None] * values.null_count),
                      total, expected="no nulls")  # fmt: skip
        if column.unique:
            outcomes["unique"].columns_checked.append(column.name)
            counts = pc.value_counts(present)
            repeated = counts.filter(pc.greater(counts.field("counts"), 1))
            if len(repeated):
                dupes = int(pc.sum(repeated.field("counts")).as_py()) - len(repeated)
                _fail(outcomes["unique"], column.name, repeated.field("values"), total, dupes)
        if (column.min is not None or column.max is not None) and column.type in NUMERIC + TEMPORAL:
            outcomes["ranges"].columns_checked.append(column.name)
            mask = None
            for which, op in (("min", pc.less), ("max", pc.greater)):
                bound = column.bound(which)  # type: ignore[arg-type]
                if bound is None:
                    continue
                out = op(present, pa.scalar(bound, type=present.type))
                mask = out if mask is None else pc.or_(mask, out)
            bad = present.filter(mask) if mask is not None else present.slice(0, 0)
            if len(bad):
                _fail(outcomes["ranges"], column.name, bad, total,
                      expected=f"[{column.min}, {column.max}]")  # fmt: skip
        if column.type == "category" and column.categories:
            outcomes["accepted_categories"].columns_checked.append(column.name)
            allowed = pa.array(column.categories, type=pa.string())
            text = pc.cast(present, pa.string())
            bad = text.filter(pc.invert(pc.is_in(text, value_set=allowed)))
            if len(bad):
                _fail(outcomes["accepted_categories"], column.name, bad, total,
                      expected=column.categories)  # fmt: skip
        if column.pattern:
            outcomes["pattern"].columns_checked.append(column.name)
            anchored = f"^(?:{column.pattern})$"
            try:
                matches = pc.match_substring_regex(present, anchored)
                bad = present.filter(pc.invert(matches))
            except pa.ArrowInvalid:  # RE2 lacks the construct: Python's re, slower but exact
                regex = re.compile(column.pattern)
                bad = pa.array(
                    [v for v in present.to_pylist() if not regex.fullmatch(v)], type=pa.string()
                )
            if len(bad):
                _fail(outcomes["pattern"], column.name, bad, total, expected=column.pattern)
    for outcome in outcomes.values():
        outcome.passed = not outcome.failures
    return list(outcomes.values())
