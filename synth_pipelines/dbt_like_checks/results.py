"""The one adapter from a check computation's `CheckOutcome` to Dagster's `AssetCheckResult`,
used by every line's in-step checks and by the YAML and image checks."""

from __future__ import annotations

import dagster as dg

from synth_pipelines.core.checks.outcome import CheckOutcome

# Dagster keeps descriptions short in the UI; the metadata carries the detail.
MAX_DESCRIPTION = 1000
# The metadata key of the failing face buckets, which check_failure_sensor holds.
BUCKETS = "buckets"


def severity(outcome: CheckOutcome) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN


def metadata_value(value: object) -> dg.RawMetadataValue:
    """Lists and dicts as JSON; numbers, strings and booleans as they are."""
    if isinstance(value, dict | list | tuple):
        return dg.MetadataValue.json(list(value) if isinstance(value, tuple) else value)
    return value  # type: ignore[return-value]


def check_result(asset_key: str | dg.AssetKey, outcome: CheckOutcome) -> dg.AssetCheckResult:
    """`outcome` as the result of the check `outcome.name` on `asset_key`: None metadata left
    out, the failing buckets (which the check-failure sensor holds) under `buckets`."""
    metadata = {k: metadata_value(v) for k, v in outcome.metadata.items() if v is not None}
    if outcome.buckets:
        metadata[BUCKETS] = dg.MetadataValue.json(list(outcome.buckets))
    return dg.AssetCheckResult(
        check_name=outcome.name,
        asset_key=asset_key,
        passed=outcome.passed,
        severity=severity(outcome),
        description=outcome.description[:MAX_DESCRIPTION],
        metadata=metadata,
    )
