"""The one result type of every check computation: a verdict, what the UI shows about it, and
the face buckets a failure touches. `dbt_like_checks.results.check_result` turns it into a
Dagster `AssetCheckResult`; nothing here knows Dagster."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Severities, as YAML tests spell them: a failed "error" check blocks and holds delivery of the
# buckets it names; a failed "warn" check is only reported.
ERROR, WARN = "error", "warn"
SEVERITIES = (ERROR, WARN)


@dataclass(frozen=True)
class CheckOutcome:
    """One check's result.

    `name` is the check's name as the UI shows it (see `core/checks/names.py`); `metadata` holds
    plain values (None is left out, lists and dicts are shown as JSON); `buckets` are the face
    buckets ("female/adult") whose rows fail, which an error-severity failure pauses."""

    name: str
    passed: bool
    description: str
    severity: str = ERROR
    metadata: dict[str, Any] = field(default_factory=dict)
    buckets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")

    @property
    def blocking(self) -> bool:
        return self.severity == ERROR
