"""React to dataset requests: package new ones, retry backordered ones when stock allows,
and expire old archives on a schedule."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg

from synth_pipelines.core.clock import aware, utcnow
from synth_pipelines.core.delivery.packaging import servable_backorders
from synth_pipelines.core.delivery.requests import (
    count_new_after,
    new_requests_after,
    queue_states,
    requests_in,
    retired_requests,
    retried_pending,
)
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.lines.datasets.assets import DATASET_PACKAGE, expire_datasets_job
from synth_pipelines.lines.dynamic import (
    attempt_run_request,
    partition_job,
    partitioned_runs,
)
from synth_pipelines.lines.retention import Retention
from synth_pipelines.partitions import dataset_requests
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.settings import Settings

PACKAGE_JOB = "dataset_package_job"
DATASET_REQUEST_SENSOR = "dataset_request_sensor"

# Delivered, then expired: their partitions go SYNTH_PARTITION_RETENTION_DAYS after expiry.
retention = Retention(
    dataset_requests,
    retired_requests,
    "requests whose download link expired at least SYNTH_PARTITION_RETENTION_DAYS ago",
)

package_job = partition_job(
    PACKAGE_JOB,
    dg.AssetSelection.assets(DATASET_PACKAGE).without_checks(),
    dataset_requests,
    "Package one dataset request (one partition of dataset_package).",
)


# A new request's created_at is taken when its row is written and its transaction commits
# moments later, so one may commit just after a newer one the sensor already read. The cursor's
# mark passes only requests older than this: a late commit behind it is still read after it.
MARK_GRACE = timedelta(seconds=60)
# Backordered requests the sensor weighs per tick, oldest first, for each run it may request:
# a later one waits until those ahead of it are served (first come, first served).
BACKORDERS_PER_RUN = 10


@dataclass
class RequestCursor:
    """What the request sensor already requested, bounded whatever the backlog: every new
    request (no attempt yet) at or before position `after` (created_at, id), and each other one
    still waiting on the attempt `requested` for it (new ones after the mark, retried, restocked).
    """

    after: tuple[datetime, str] | None
    requested: dict[str, int]

    @classmethod
    def parse(cls, raw: str | None) -> RequestCursor:
        data = json.loads(raw or "{}")
        if "requested" not in data:  # a cursor from before the mark: request id → attempt
            return cls(None, {key: int(attempt) for key, attempt in data.items()})
        after = data.get("after")
        mark = (datetime.fromisoformat(after[0]), after[1]) if after else None
        return cls(mark, {key: int(attempt) for key, attempt in data["requested"].items()})

    def dump(self) -> str:
        after = [self.after[0].isoformat(), self.after[1]] if self.after else None
        return json.dumps({"after": after, "requested": self.requested}, sort_keys=True)


@dataclass(frozen=True, order=True)
class _Candidate:
    position: tuple[datetime, str]
    attempts: int
    why: str


def build_dataset_request_sensor(settings: Settings) -> dg.SensorDefinition:
    """New pending requests, and backordered ones the inventory now covers, become runs."""
    max_runs = settings.sensors.max_runs_per_tick

    @dg.sensor(
        name=DATASET_REQUEST_SENSOR,
        job_name=PACKAGE_JOB,
        minimum_interval_seconds=settings.datasets.sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Adds a dataset_requests partition per new request and requests a dataset_package "
            "run for it; re-requests backordered requests once the inventory covers them. At "
            f"most SYNTH_SENSOR_MAX_RUNS_PER_TICK ({max_runs}) runs a tick, oldest first."
        ),
    )
    def dataset_request_sensor(
        context: dg.SensorEvaluationContext, factory_db: FactoryDatabaseResource
    ) -> dg.SensorResult | dg.SkipReason:
        db = factory_db.get_db()
        cursor = RequestCursor.parse(context.cursor)
        result = next_requests(db, cursor, max_runs, utcnow())
        return partitioned_runs(
            context,
            dataset_requests,
            [_run_request(key, attempt, why) for key, attempt, why in result.chosen],
            result.cursor.dump(),
            result.cursor.requested,
            "request",
            "a new request, or stock for a backordered one",
            DATASET_REQUEST_SENSOR,
            left=result.left,
        )

    return dataset_request_sensor


@dataclass(frozen=True)
class NextRequests:
    chosen: list[tuple[str, int, str]]  # (request id, attempt, why), oldest first
    cursor: RequestCursor
    left: int  # requests still waiting for a run after these


def next_requests(
    db: FactoryDatabase, cursor: RequestCursor, max_runs: int, now: datetime
) -> NextRequests:
    """The runs of one tick: the oldest `max_runs` requests waiting for one (new, retried, or
    backordered and now covered by the inventory) that `cursor` has not requested yet, and the
    cursor after them. Every read is bounded by `max_runs` and the cursor, not the backlog."""
    # An entry stays while its request still waits on the attempt requested (its run has not
    # started); once the run starts or the request moves on, the entry goes.
    states = queue_states(db, cursor.requested)
    requested = {
        key: attempt
        for key, attempt in cursor.requested.items()
        if (state := states.get(key))
        and state.status in ("pending", "backordered")
        and state.attempts == attempt
    }
    positions = {key: states[key].position for key in requested}
    ahead = sum(1 for key, attempt in requested.items() if attempt == 0)
    new = new_requests_after(db, cursor.after, max_runs + ahead)  # oldest first
    retried = retried_pending(db, max_runs + len(requested))
    backordered = requests_in(db, ("backordered",), BACKORDERS_PER_RUN * max_runs)
    candidates = {
        queued.id: _Candidate(queued.position, queued.attempts, "new")
        for queued in [*new, *retried]
        if requested.get(queued.id) != queued.attempts
    }
    for request in servable_backorders(db, backordered):
        if requested.get(request.id) != request.attempts:
            position = (aware(request.created_at), request.id)
            candidates[request.id] = _Candidate(position, request.attempts, "restocked")
    waiting = sorted(candidates.items(), key=lambda item: item[1])
    chosen = waiting[:max_runs]
    for key, candidate in chosen:
        requested[key] = candidate.attempts
        positions[key] = candidate.position
    # The mark moves over the new requests now requested, oldest first, up to the first one
    # not requested or too recent; entries it passes are remembered by the mark alone.
    mark = cursor.after
    for queued in new:
        if requested.get(queued.id) != 0 or queued.created_at > now - MARK_GRACE:
            break
        mark = queued.position
    if mark is not None:
        requested = {
            key: attempt
            for key, attempt in requested.items()
            if not (attempt == 0 and positions[key] <= mark)
        }
    left = len(waiting) - len(chosen)
    if len(new) == max_runs + ahead:
        # New requests beyond those read: counted on the index, not read.
        left += count_new_after(db, cursor.after) - len(new)
    chosen_runs = [(key, candidate.attempts, candidate.why) for key, candidate in chosen]
    return NextRequests(chosen_runs, RequestCursor(mark, requested), left)


def _run_request(request_id: str, attempt: int, why: str) -> dg.RunRequest:
    return attempt_run_request(
        request_id, attempt, {"synth/trigger": "dataset_request_sensor", "synth/why": why}
    )


def build_expire_datasets_schedule() -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="expire_datasets_schedule",
        cron_schedule="17 * * * *",
        job=expire_datasets_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Hourly: delete archives whose link expired and mark the requests expired.",
    )
