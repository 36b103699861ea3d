"""What a YAML test kind is (`TestKind`), and the Great Expectations expectations a YAML file
may name directly (`expect_column_values_to_match_…`).

Our own vocabulary (`not_null`, `range`, `distribution`, …) is registered in `kinds.py`. Great
Expectations takes ~5 s to import, too long for every Dagster code-location load, so its
expectation signatures are read from `ge_catalog.json`, a snapshot of the pinned release that a
test compares with the installed library.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from synth_pipelines.core.checks.measurement import TableMeasurement
    from synth_pipelines.core.checks.spec import TableInfo, TestSpec

GE_CATALOG = Path(__file__).with_name("ge_catalog.json")
# GE fields that YAML sets through its own structure (`column`, `where`) or that are bookkeeping.
_STRUCTURAL = {"batch_id", "row_condition", "condition_parser", "column"}
# Keys any test accepts besides its own arguments.
COMMON_KEYS = ("severity", "where", "name", "description")


@dataclass(frozen=True)
class TestKind:
    """A test a YAML file may name: its arguments, whether it needs a column, and how it runs:
    as the Great Expectations `expectation` with the keyword arguments `kwargs` builds, or by
    our own `evaluate`."""

    name: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    needs_column: bool = True  # False: a table-level test, declared under the asset's `tests:`
    expectation: str | None = None  # the GE class it runs as; None = evaluated by our code
    # (spec, table, related: asset -> its table, now) -> the GE keyword arguments but `column`
    kwargs: Callable[..., dict[str, Any]] | None = None
    evaluate: Callable[[TestSpec, pd.DataFrame], TableMeasurement] | None = None
    # Judges argument values before any data (raises ValueError saying what is wrong).
    validate: Callable[[dict[str, Any], dict[str, TableInfo]], None] | None = None
    describe: Callable[[str, dict[str, Any]], str] | None = None  # (subject, args) -> text
    reads_timestamps: bool = False  # its column is read as UTC timestamps

    @property
    def arguments(self) -> tuple[str, ...]:
        return self.required + self.optional


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
        kwargs=_as_given,
    )


def _as_given(spec: TestSpec, *_: Any) -> dict[str, Any]:
    """A GE expectation named in YAML takes the YAML arguments as they are."""
    return dict(spec.args)


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
