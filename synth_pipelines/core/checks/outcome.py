"""The one result type of every check computation: a verdict, what the UI shows about it, and
the face buckets a failure touches. `dbt_like_checks.results.check_result` turns it into a
Dagster `AssetCheckResult`; nothing here knows Dagster.

A check with nothing to check — no table yet, no column with the constraint, no protected
reference set, no face, no ready dataset — is *skipped* (`CheckOutcome.skip`), never passed: a
pass says the data was looked at and is good, and a check that looked at nothing must not say so.

How a skip reaches Dagster (decided for issue 21, read from the installed Dagster 1.13):

- Not emitting the check's result would be Dagster's own "skipped", but only sometimes. A
  `multi_asset_check(can_subset=True)` that leaves a selected check out gets a PLANNED record
  that resolves to SKIPPED only when the whole run succeeds; when any blocking check in the run
  fails (the run fails, which is when checks matter) the same record resolves to
  EXECUTION_FAILED, which the UI and asset health show as a crashed check. An `@asset` with
  `check_specs` (tabular_dataset's, persona_adapter's in-step checks) cannot leave one out at
  all: the step fails with DagsterStepOutputNotFoundError. And a SKIPPED record carries no
  reason: nothing says why the check did not run. Asset health then falls back to the check's
  previous result, so a check that passed last week and has nothing to check now shows green.
- So a skip is an evaluated result that does not pass: `passed=False` with severity WARN,
  description "skipped: <reason>" and metadata `skipped: true`, `skip_reason`. The UI shows it
  as a warning with its reason on the check itself, asset health as a warning (never healthy),
  and it reads the same in every run and every kind of check. WARN never blocks a run or a
  downstream step. check_failure_sensor neither places nor lifts a hold for a skipped check (a
  check that looked at nothing says nothing about the buckets), and `synth checks run` counts it
  as skipped, apart from passed, failed and warned, and never exits 1 for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Severities, as YAML tests spell them: a failed "error" check blocks and holds delivery of the
# buckets it names; a failed "warn" check is only reported.
ERROR, WARN = "error", "warn"
SEVERITIES = (ERROR, WARN)
# What a check's result is, as the CLI and summaries count it.
PASSED, FAILED, WARNED, SKIPPED = "passed", "failed", "warned", "skipped"
SKIP_PREFIX = "skipped: "


@dataclass(frozen=True)
class CheckOutcome:
    """One check's result.

    `name` is the check's name as the UI shows it (see `core/checks/names.py`); `metadata` holds
    plain values (None is left out, lists and dicts are shown as JSON); `buckets` are the face
    buckets ("female/adult") whose rows fail, which an error-severity failure pauses. `skipped`:
    the check had nothing to check (build it with `CheckOutcome.skip`); such an outcome does not
    pass, blocks nothing and names no bucket."""

    name: str
    passed: bool
    description: str
    severity: str = ERROR
    metadata: dict[str, Any] = field(default_factory=dict)
    buckets: list[str] = field(default_factory=list)
    skipped: bool = False

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")
        if self.skipped and (self.passed or self.severity != WARN or self.buckets):
            raise ValueError(
                f"check {self.name!r}: a skipped check does not pass, warns and names no bucket"
            )

    @classmethod
    def skip(cls, name: str, reason: str, metadata: dict[str, Any] | None = None) -> CheckOutcome:
        """`name` had nothing to check, for `reason` ("no protected reference set configured");
        `metadata` says what it found instead (counts, settings)."""
        return cls(
            name,
            passed=False,
            description=SKIP_PREFIX + reason,
            severity=WARN,
            metadata={**(metadata or {}), "skipped": True, "skip_reason": reason},
            skipped=True,
        )

    @property
    def blocking(self) -> bool:
        return self.severity == ERROR

    @property
    def status(self) -> str:
        """passed, failed (error severity), warned (a failed warning) or skipped."""
        if self.skipped:
            return SKIPPED
        if self.passed:
            return PASSED
        return FAILED if self.blocking else WARNED
