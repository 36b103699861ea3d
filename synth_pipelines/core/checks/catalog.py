"""Which tests a YAML file may name, and which arguments each takes.

Built-in tests (`not_null`, `range`, …) are dbt's vocabulary mapped onto Great Expectations
expectations; any GE expectation may also be named directly (`expect_column_values_to_match_…`).
Great Expectations takes ~5 s to import, too long for every Dagster code-location load, so its
expectation signatures are read from `ge_catalog.json`, a snapshot of the pinned release that a
test compares with the installed library.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

GE_CATALOG = Path(__file__).with_name("ge_catalog.json")
# GE fields that YAML sets through its own structure (`column`, `where`) or that are bookkeeping.
_STRUCTURAL = {"batch_id", "row_condition", "condition_parser", "column"}


@dataclass(frozen=True)
class TestKind:
    """A test a YAML file may name: its arguments, and whether it needs a column."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    needs_column: bool = True  # False: a table-level test, declared under the asset's `tests:`
    expectation: str | None = None  # the GE class it runs as; None = evaluated by our code

    @property
    def arguments(self) -> tuple[str, ...]:
        return self.required + self.optional


BUILT_IN: dict[str, TestKind] = {
    kind.name: kind
    for kind in (
        TestKind("not_null", (), expectation="ExpectColumnValuesToNotBeNull"),
        TestKind("unique", (), expectation="ExpectColumnValuesToBeUnique"),
        TestKind(
            "accepted_values", ("values",), ("quote",), expectation="ExpectColumnValuesToBeInSet"
        ),
        TestKind("relationships", ("to", "field"), expectation="ExpectColumnValuesToBeInSet"),
        TestKind(
            "range", (), ("min", "max", "inclusive"), expectation="ExpectColumnValuesToBeBetween"
        ),
        TestKind("regex", ("pattern",), expectation="ExpectColumnValuesToMatchRegex"),
        TestKind(
            "row_count",
            (),
            ("min", "max"),
            needs_column=False,
            expectation="ExpectTableRowCountToBeBetween",
        ),
        TestKind("freshness", ("max_age",), expectation="ExpectColumnMaxToBeBetween"),
        TestKind("distribution", ("shares",), ("tolerance",)),
    )
}
# Keys any test accepts besides its own arguments.
COMMON_KEYS = ("severity", "where", "name", "description")
SEVERITIES = ("error", "warn")


def snake_to_class(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def class_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@cache
def ge_catalog() -> dict[str, dict]:
    """Snake-case GE expectation name → {"class", "column", "required", "optional"}."""
    return json.loads(GE_CATALOG.read_text())


def ge_kind(name: str) -> TestKind | None:
    """The GE expectation `name` (snake case) as a TestKind, or None if GE has no such one."""
    entry = ge_catalog().get(name)
    if entry is None:
        return None
    return TestKind(
        name=name,
        required=tuple(entry["required"]),
        optional=tuple(entry["optional"]),
        needs_column=entry["column"],
        expectation=entry["class"],
    )


def build_ge_catalog() -> dict[str, dict]:
    """The catalog as the installed Great Expectations defines it (imports GE: slow)."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.expectation import Expectation

    common = set(Expectation.__fields__)
    catalog = {}
    for attribute in sorted(dir(gxe)):
        cls = getattr(gxe, attribute)
        if not (isinstance(cls, type) and issubclass(cls, Expectation)):
            continue
        if not re.match(r"Expect[A-Z]", attribute):
            continue
        fields = {k: f for k, f in cls.__fields__.items() if k not in common}
        own = {k: f for k, f in fields.items() if k not in _STRUCTURAL}
        catalog[class_to_snake(attribute)] = {
            "class": attribute,
            "column": "column" in fields and fields["column"].required,
            "required": sorted(k for k, f in own.items() if f.required),
            "optional": sorted(k for k, f in own.items() if not f.required),
        }
    return catalog


if __name__ == "__main__":  # refresh the snapshot after upgrading great-expectations
    GE_CATALOG.write_text(json.dumps(build_ge_catalog(), indent=1, sort_keys=True) + "\n")
