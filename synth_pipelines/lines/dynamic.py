"""What the sensors over dynamic partitions (one per request or job) share: one run per attempt,
remembered in a cursor, with the partitions the runs need added in the same SensorResult."""

import json
from collections.abc import Callable, Iterable

import dagster as dg

from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.lines.gpu import gpu_tags
from synth_pipelines.resources.database import FactoryDatabaseResource

# What an attempt sensor reads from the factory DB: each waiting key → its current attempt, and
# the keys whose partitions must go (revoked consent).
Waiting = Callable[[FactoryDatabase], tuple[dict[str, int], set[str]]]


def requested_attempts(context: dg.SensorEvaluationContext) -> dict[str, int]:
    """The cursor: each waiting key → the attempt a run was already requested for."""
    return json.loads(context.cursor or "{}")


def attempt_run_request(key: str, attempt: int, tags: dict[str, str]) -> dg.RunRequest:
    """The run for one attempt at partition `key`: its run key dedupes repeats of the attempt."""
    return dg.RunRequest(run_key=f"{key}:{attempt}", partition_key=key, tags=tags)


def partitioned_runs(
    context: dg.SensorEvaluationContext,
    partitions_def: dg.DynamicPartitionsDefinition,
    run_requests: list[dg.RunRequest],
    cursor: str,
    waiting: Iterable[str],
    noun: str,
    waits_for: str,
    trigger: str,
    left: int = 0,
) -> dg.SensorResult:
    """The tick's answer: `run_requests`, with their partitions not yet known added, and the
    `cursor` (what was already requested), so nothing is picked twice across ticks and daemon
    restarts; when there is nothing to run, a skip reason saying what the sensor waits for
    (`waits_for`) and how many `noun`s it already handled (the keys it has a partition for and
    those `waiting`; its runs carry the tag synth/trigger=`trigger`). `left`: the `noun`s still
    waiting for a run after this tick's, for the tick's log (a capped tick leaves them to the
    next ones).
    """
    known = set(context.instance.get_dynamic_partitions(partitions_def.name))
    if not run_requests:
        # Handled: every key this line has a partition for (a delivered request has left
        # `waiting`, but it was handled: "no requests yet" would be untrue). With none left,
        # retention may have removed them: the sensor's runs say whether there were any.
        handled = len(known | set(waiting))
        earlier = not handled and bool(
            context.instance.get_run_records(
                filters=dg.RunsFilter(tags={"synth/trigger": trigger}), limit=1
            )
        )
        reason = idle_reason(noun, handled, waits_for, earlier=earlier)
        return dg.SensorResult(skip_reason=reason, cursor=cursor)
    context.log.info(
        f"requested {len(run_requests)} run(s); {left} {noun}(s) still waiting for a run"
        + (" (next ticks, oldest first)" if left else "")
    )
    new = [run.partition_key for run in run_requests if run.partition_key not in known]
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[partitions_def.build_add_request(new)] if new else [],
        cursor=cursor,
    )


def idle_reason(noun: str, known: int, waits_for: str, earlier: bool = False) -> str:
    """Why a tick requested nothing, in the words the Dagster UI shows on the sensor; `earlier`:
    no partition is left but the sensor ran earlier keys (their partitions were retired)."""
    if not known and earlier:
        return f"nothing new: earlier {noun}s handled, partitions retired; waiting for {waits_for}"
    if not known:
        return f"no {noun}s yet; waiting for {waits_for}"
    return f"nothing new: {known} {noun}(s) already handled; waiting for {waits_for}"


def runs_per_attempt(
    context: dg.SensorEvaluationContext,
    partitions_def: dg.DynamicPartitionsDefinition,
    waiting: dict[str, int],
    trigger: str,
    noun: str,
    waits_for: str,
    max_runs: int,
) -> dg.SensorResult:
    """`partitioned_runs` for the common case: one run, tagged with the `trigger` sensor's name,
    for each waiting key (in `waiting`'s order, oldest first) whose current attempt has no run
    yet, at most `max_runs` a tick: the others keep no cursor entry, so the next ticks pick
    them, still oldest first. The cursor holds only the keys still waiting whose attempt was
    requested."""
    requested = requested_attempts(context)
    todo = [key for key, attempt in waiting.items() if requested.get(key) != attempt]
    chosen = todo[:max_runs]
    run_requests = [
        attempt_run_request(key, waiting[key], {"synth/trigger": trigger}) for key in chosen
    ]
    picked = set(chosen)
    cursor = {
        key: attempt
        for key, attempt in waiting.items()
        if key in picked or requested.get(key) == attempt
    }
    return partitioned_runs(
        context,
        partitions_def,
        run_requests,
        json.dumps(cursor, sort_keys=True),
        waiting,
        noun,
        waits_for,
        trigger,
        left=len(todo) - len(chosen),
    )


def removing_partitions(
    context: dg.SensorEvaluationContext,
    partitions_def: dg.DynamicPartitionsDefinition,
    result: dg.SensorResult,
    revoked: set[str],
) -> dg.SensorResult:
    """`result`, also removing the partitions of `revoked` keys that still exist (a person who
    withdrew consent leaves no partition behind)."""
    if not revoked:
        return result
    gone = sorted(revoked & set(context.instance.get_dynamic_partitions(partitions_def.name)))
    if not gone:
        return result
    return dg.SensorResult(
        run_requests=result.run_requests,
        dynamic_partitions_requests=[
            *(result.dynamic_partitions_requests or []),
            partitions_def.build_delete_request(gone),
        ],
        cursor=result.cursor,
    )


def partition_job(
    name: str,
    selection: dg.AssetSelection,
    partitions_def: dg.PartitionsDefinition,
    description: str,
    gpu: bool = False,
):
    """A line's job: one partition of its assets per run, on the executor of the definitions
    (synth_pipelines/execution.py, SYNTH_EXECUTOR): by default in the run's own process (each
    line's work is one step, or parallelises inside its step, so a process per step would only
    add its start-up and imports); with `celery`, each step on a Celery worker. `gpu`: its runs
    take a `gpu` pool slot, so on Kubernetes their pod goes to a GPU node (lines/gpu.py)."""
    return dg.define_asset_job(
        name,
        selection=selection,
        partitions_def=partitions_def,
        description=description,
        tags=gpu_tags() if gpu else None,
    )


def attempt_sensor(
    *,
    name: str,
    job_name: str,
    partitions_def: dg.DynamicPartitionsDefinition,
    interval: int,
    noun: str,
    waits_for: str,
    waiting: Waiting,
    description: str,
    max_runs: int,
) -> dg.SensorDefinition:
    """A sensor asking for one run of `job_name` per attempt of each key `waiting` returns (at
    most `max_runs` a tick, SYNTH_SENSOR_MAX_RUNS_PER_TICK), adding the partitions the runs need
    and removing those of the keys it says are gone."""

    @dg.sensor(
        name=name,
        job_name=job_name,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
    )
    def _sensor(
        context: dg.SensorEvaluationContext, factory_db: FactoryDatabaseResource
    ) -> dg.SensorResult:
        pending, gone = waiting(factory_db.get_db())
        result = runs_per_attempt(context, partitions_def, pending, name, noun, waits_for, max_runs)
        return removing_partitions(context, partitions_def, result, gone)

    return _sensor
