"""Checks a tabular job's schema implies, evaluated on its output table: not null, unique,
ranges, accepted categories, regex patterns. Each is one named check over every column it
applies to, with the failing columns, counts and a sample of failing values; a check no column
of the schema has a constraint for is skipped, with that reason (never a pass)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from synth_pipelines.core.checks.names import (
    TABULAR_ACCEPTED_CATEGORIES,
    TABULAR_NOT_NULL,
    TABULAR_PATTERN,
    TABULAR_RANGES,
    TABULAR_UNIQUE,
)
from synth_pipelines.core.checks.outcome import ERROR, WARN, CheckOutcome
from synth_pipelines.core.tabular.schema import NUMERIC, TEMPORAL, TableSchema

# Check name → the constraint it tests, as descriptions name it; in the order they run.
CHECKS = {
    TABULAR_NOT_NULL: "not_null",
    TABULAR_UNIQUE: "unique",
    TABULAR_RANGES: "ranges",
    TABULAR_ACCEPTED_CATEGORIES: "accepted_categories",
    TABULAR_PATTERN: "pattern",
}
# A failed error check means the output breaks its own schema: it blocks the job (and
# downstream use). A pattern is a hint the generator follows, so a miss only warns.
SEVERITY = {name: WARN if name == TABULAR_PATTERN else ERROR for name in CHECKS}
SAMPLE = 5


@dataclass
class _Tally:
    """One check while the columns are visited: those it applies to, and those that fail."""

    columns_checked: list[str] = field(default_factory=list)
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)  # column → details

    def fail(
        self, column: str, bad: pa.Array, total: int, count: int | None = None, **extra: Any
    ) -> None:
        """Record `bad` (sampled) as the column's failure; `count` when it is not len(bad)."""
        count = len(bad) if count is None else count
        self.failures[column] = {
            "unexpected_count": count,
            "unexpected_percent": round(100.0 * count / total, 4) if total else 0.0,
            "sample": _sample(bad),
            **extra,
        }

    def outcome(self, name: str) -> CheckOutcome:
        constraint = CHECKS[name]
        if not self.columns_checked:  # nothing to check is not a pass
            return CheckOutcome.skip(
                name,
                f"no column in the job's schema has the {constraint} constraint",
                {"columns_checked": []},
            )
        if not self.failures:
            description = f"{constraint}: {', '.join(self.columns_checked)} pass"
        else:
            description = f"{constraint} failed on {', '.join(self.failures)}"
        return CheckOutcome(
            name,
            passed=not self.failures,
            description=description,
            severity=SEVERITY[name],
            metadata={
                "columns_checked": self.columns_checked,
                "failures": self.failures,
                "unexpected_count": sum(f["unexpected_count"] for f in self.failures.values()),
            },
        )


def _sample(values: pa.Array) -> list[Any]:
    return [str(value) for value in values.slice(0, SAMPLE).to_pylist()]


def schema_checks(schema: TableSchema, table: pa.Table) -> list[CheckOutcome]:
    """Every check in CHECKS, in that order, on `table` (which must hold the schema's columns)."""
    tallies = {name: _Tally() for name in CHECKS}
    not_null, unique, ranges, categories, pattern = tallies.values()
    total = table.num_rows
    for column in schema.columns:
        values = table.column(column.name).combine_chunks()
        present = values.filter(pc.is_valid(values))
        if column.nullable == 0 and column.source == "local":
            not_null.columns_checked.append(column.name)
            if values.null_count:
                nulls = pa.array([None] * values.null_count)
                not_null.fail(column.name, nulls, total, expected="no nulls")
        if column.unique:
            unique.columns_checked.append(column.name)
            counts = pc.value_counts(present)
            repeated = counts.filter(pc.greater(counts.field("counts"), 1))
            if len(repeated):
                dupes = int(pc.sum(repeated.field("counts")).as_py()) - len(repeated)
                unique.fail(column.name, repeated.field("values"), total, dupes)
        if (column.min is not None or column.max is not None) and column.type in NUMERIC + TEMPORAL:
            ranges.columns_checked.append(column.name)
            mask = None
            for which, op in (("min", pc.less), ("max", pc.greater)):
                bound = column.bound(which)  # type: ignore[arg-type]
                if bound is None:
                    continue
                out = op(present, pa.scalar(bound, type=present.type))
                mask = out if mask is None else pc.or_(mask, out)
            bad = present.filter(mask) if mask is not None else present.slice(0, 0)
            if len(bad):
                ranges.fail(column.name, bad, total, expected=f"[{column.min}, {column.max}]")
        if column.type == "category" and column.categories:
            categories.columns_checked.append(column.name)
            allowed = pa.array(column.categories, type=pa.string())
            text = pc.cast(present, pa.string())
            bad = text.filter(pc.invert(pc.is_in(text, value_set=allowed)))
            if len(bad):
                categories.fail(column.name, bad, total, expected=column.categories)
        if column.pattern:
            pattern.columns_checked.append(column.name)
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
                pattern.fail(column.name, bad, total, expected=column.pattern)
    return [tally.outcome(name) for name, tally in tallies.items()]
