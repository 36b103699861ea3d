"""What one YAML test measured on one table (`TableMeasurement`), and the test's `CheckOutcome`
over every table it ran on (`yaml_outcome`): one table for the factory's own, one per tabular
job for `tabular_dataset`. A test with no table to run on, or none with its column or with rows
to test, is skipped with that reason (never a pass)."""

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
    # Why this table gives the test nothing to check (it lacks the column, as tabular jobs
    # differ; no rows, or none its `where` keeps); None: it was measured.
    skip_reason: str | None = None

    @property
    def applicable(self) -> bool:
        return self.skip_reason is None

    @property
    def summary(self) -> str:
        spec = self.spec
        if self.skip_reason:
            return f"skipped: {self.skip_reason}"
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
    the asset's one table). It fails when any table fails; a table that gives the test nothing
    to check (no such column, no rows) does not count, and with none left the check is skipped,
    saying why."""
    ran = {label: m for label, m in measured.items() if m.applicable}
    skipped = {label: str(m.skip_reason) for label, m in measured.items() if not m.applicable}
    failed = {label: m for label, m in ran.items() if not m.passed}
    metadata: dict[str, Any] = {
        "severity": spec.severity,
        "source": spec.location,
        "expectation": next(iter(ran.values())).expectation if ran else {"type": spec.test},
    }
    if spec.where:
        metadata["where"] = spec.where
    if not ran:
        if any(measured):
            metadata["tables_skipped"] = skipped
        return CheckOutcome.skip(spec.name, _skip_reason(spec, skipped), metadata)
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
    errors = {label or "table": m.error for label, m in ran.items() if m.error}
    if errors:
        metadata["errors"] = errors
    if any(measured):  # labelled tables: tabular jobs
        metadata["tables"] = {label: m.passed for label, m in ran.items()}
        if skipped:
            metadata["tables_skipped"] = skipped
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
        buckets=sorted({b for m in failed.values() for b in m.buckets}),
    )


def _skip_reason(spec: TestSpec, skipped: dict[str, str]) -> str:
    """Why no table gave `spec` anything to check (`skipped`: each table's reason, by label)."""
    if not skipped:
        return "no table to check yet"
    reasons = set(skipped.values())
    if len(skipped) == 1:
        ((label, reason),) = skipped.items()
        return f"{reason} in {f'tabular job {label}' if label else spec.asset}"
    if len(reasons) == 1:
        return f"{reasons.pop()} in any of the {len(skipped)} checked tables"
    return "; ".join(f"{label}: {reason}" for label, reason in sorted(skipped.items()))
