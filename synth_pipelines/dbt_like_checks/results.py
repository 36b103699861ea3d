"""The one adapter from a check computation's `CheckOutcome` to Dagster's `AssetCheckResult`,
used by every line's in-step checks and by the YAML and image checks; and its inverse for
readers of recorded results (`evaluation_status`: the sensor, `synth checks run`, the demo).

A skipped outcome becomes a warning that does not pass, its reason in the description and
`skipped: true` in the metadata (why: core/checks/outcome.py)."""

from __future__ import annotations

import dagster as dg

from synth_pipelines.core.checks.outcome import FAILED, PASSED, SKIPPED, WARNED, CheckOutcome

# Dagster keeps descriptions short in the UI; the metadata carries the detail.
MAX_DESCRIPTION = 1000
# The metadata key of the failing face buckets, which check_failure_sensor holds.
BUCKETS = "buckets"
# The metadata key that marks a check with nothing to check (never a pass).
SKIPPED_KEY = "skipped"


def severity(outcome: CheckOutcome) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN


def metadata_value(value: object) -> dg.RawMetadataValue:
    """Lists and dicts as JSON; numbers, strings, booleans and Dagster metadata values (a
    thumbnail's markdown) as they are."""
    if isinstance(value, dg.MetadataValue):
        return value
    if isinstance(value, dict | list | tuple):
        return dg.MetadataValue.json(list(value) if isinstance(value, tuple) else value)
    return value  # type: ignore[return-value]


def check_result(asset_key: str | dg.AssetKey, outcome: CheckOutcome) -> dg.AssetCheckResult:
    """`outcome` as the result of the check `outcome.name` on `asset_key`: None metadata left
    out, the failing buckets (which the check-failure sensor holds) under `buckets`, and a
    skipped outcome marked `skipped: true` (a non-passing warning)."""
    metadata = {k: metadata_value(v) for k, v in outcome.metadata.items() if v is not None}
    if outcome.buckets:
        metadata[BUCKETS] = dg.MetadataValue.json(list(outcome.buckets))
    if outcome.skipped:
        metadata[SKIPPED_KEY] = True
    return dg.AssetCheckResult(
        check_name=outcome.name,
        asset_key=asset_key,
        passed=outcome.passed,
        severity=severity(outcome),
        description=outcome.description[:MAX_DESCRIPTION],
        metadata=metadata,
    )


def is_skipped(evaluation: dg.AssetCheckEvaluation) -> bool:
    """Whether a recorded evaluation is a skip (the check had nothing to check)."""
    flag = evaluation.metadata.get(SKIPPED_KEY)
    return not evaluation.passed and bool(getattr(flag, "value", flag))


def evaluation_status(evaluation: dg.AssetCheckEvaluation) -> str:
    """passed, failed (error severity), warned (a failed warning) or skipped."""
    if is_skipped(evaluation):
        return SKIPPED
    if evaluation.passed:
        return PASSED
    return FAILED if evaluation.severity == dg.AssetCheckSeverity.ERROR else WARNED
