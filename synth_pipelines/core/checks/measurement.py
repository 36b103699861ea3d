"""What one YAML test measured on one table (`TableMeasurement`), and the test's `CheckOutcome`
over every table it ran on (`yaml_outcome`): one table for the factory's own, one per tabular
job for `tabular_dataset`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synth_pipelines.core.checks.outcome import CheckOutcome

if TYPE_CHECKING:
    from synth_pipelines.core.checks.spec import TestSpec

SAMPLE = 10


@dataclass
class TableMeasurement:
    """One test on one table: Great Expectations' counts (or our own, for a custom kind)."""

    spec: TestSpec
    passed: bool
    element_count: int = 0
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    sample: list[Any] = field(default_factory=list)  # failing values
    observed: Any = None  # aggregate tests: the value measured
    expectation: dict[str, Any] = field(default_factory=dict)  # GE type + kwargs
    buckets: list[str] = field(default_factory=list)  # face buckets with failing rows
    error: str | None = None  # why the test could not run
    applicable: bool = True  # False: the table lacks the column (tabular jobs differ)

    @property
    def summary(self) -> str:
        spec = self.spec
        if not self.applicable:
            return f"not applicable: no column {spec.column!r} in this table"
        if self.error:
            return f"could not run: {self.error}"
        if self.passed:
            return f"passed: {spec.description}"
        if self.unexpected_count is not None:
            return (
                f"{self.unexpected_count} of {self.element_count} rows "
                f"({self.unexpected_percent:.4g}%) fail: {spec.description}; e.g. {self.sample[:3]}"
            )
        return f"failed: {spec.description}; observed {self.observed}"


def yaml_outcome(spec: TestSpec, measured: dict[str, TableMeasurement]) -> CheckOutcome:
    """The check of `spec` over the tables it `measured` (labelled: a tabular job id, or "" for
    the asset's one table). It fails when any table fails; a table without the test's column
    does not count, and with none left the check passes as not applicable."""
    ran = {label: m for label, m in measured.items() if m.applicable}
    failed = {label: m for label, m in ran.items() if not m.passed}
    metadata: dict[str, Any] = {
        "severity": spec.severity,
        "source": spec.location,
        "expectation": next(iter(ran.values())).expectation if ran else {"type": spec.test},
    }
    if spec.where:
        metadata["where"] = spec.where
    buckets: list[str] = []
    if not ran:
        metadata["applicable"] = False
        description = (
            f"not applicable: no checked table has column {spec.column!r}"
            if measured
            else "nothing to check: no table yet"
        )
    else:
        unexpected = [m.unexpected_count for m in ran.values() if m.unexpected_count is not None]
        elements = sum(m.element_count for m in ran.values())
        if unexpected:
            metadata["unexpected_count"] = sum(unexpected)
            metadata["unexpected_percent"] = round(100.0 * sum(unexpected) / max(elements, 1), 4)
        metadata["rows_checked"] = elements
        metadata["failing_sample"] = [value for m in failed.values() for value in m.sample][:SAMPLE]
        observed = {label or "table": m.observed for label, m in ran.items() if m.observed}
        if observed:
            metadata["observed"] = observed
        buckets = sorted({b for m in failed.values() for b in m.buckets})
        errors = {label or "table": m.error for label, m in ran.items() if m.error}
        if errors:
            metadata["errors"] = errors
        if any(measured):  # labelled tables: tabular jobs
            metadata["tables"] = {label: m.passed for label, m in measured.items() if m.applicable}
        worst = next(iter(failed.values()), next(iter(ran.values())))
        description = worst.summary
        if len(ran) > 1 and failed:
            description = f"{len(failed)} of {len(ran)} tables fail; {worst.summary}"
    return CheckOutcome(
        name=spec.name,
        passed=not failed,
        description=description,
        severity=spec.severity,
        metadata=metadata,
        buckets=buckets,
    )
