"""Which buckets to refill, and by how much: the refill sensor's decision, without Dagster.

A bucket is low when its available faces fall below its low-water mark (never above its
target) or below the demand of backordered requests waiting on it. A low bucket is refilled to
target plus that demand, unless a refill is already in flight or the last one ran out of
attempts within the back-off window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Refill:
    bucket: str
    count: int


@dataclass(frozen=True)
class RefillPlan:
    refills: list[Refill] = field(default_factory=list)
    low: list[str] = field(default_factory=list)  # every low bucket, in bucket order
    in_flight: list[str] = field(default_factory=list)  # low, but a refill is running
    backing_off: dict[str, str] = field(default_factory=dict)  # low, last refill short: why

    def summary(self) -> str:
        return (
            f"{len(self.low)} bucket(s) below low-water mark; {len(self.in_flight)} refilling, "
            f"{len(self.backing_off)} backing off"
        )


def low_buckets(
    levels: Mapping[str, int],
    targets: Mapping[str, int],
    low_water: Mapping[str, int],
    demand: Mapping[str, int],
) -> list[str]:
    """Buckets (in `targets`' order) below min(low-water mark, target) or below their demand."""
    return [
        key
        for key, target in targets.items()
        if levels[key] < min(low_water[key], target) or levels[key] < demand.get(key, 0)
    ]


def plan_refills(
    levels: Mapping[str, int],
    targets: Mapping[str, int],
    low_water: Mapping[str, int],
    demand: Mapping[str, int],
    in_flight: set[str],
    backoff: Mapping[str, str],
) -> RefillPlan:
    """The refills to request now. `in_flight`: buckets with a refill queued or running;
    `backoff`: buckets whose last refill fell short within the back-off window, with why."""
    low = low_buckets(levels, targets, low_water, demand)
    busy = [key for key in low if key in in_flight]
    starved = {key: backoff[key] for key in low if key in backoff}
    refills = [
        Refill(key, targets[key] + demand.get(key, 0) - levels[key])
        for key in low
        if key not in in_flight and key not in starved
    ]
    return RefillPlan(refills=refills, low=low, in_flight=busy, backing_off=starved)
