"""React to check results: a failed error-severity check opens a delivery hold on the buckets
it names; the next passing run of the same check closes it. The sensor only reads (the latest
check executions, the open holds) and requests an apply_check_holds_job run with what to place
and lift; the job writes."""

import hashlib
import json
from collections.abc import Sequence

import dagster as dg

from synth_pipelines.core.checks.holds import open_holds
from synth_pipelines.dbt_like_checks.holds import (
    APPLY_CHECK_HOLDS_JOB,
    HoldToLift,
    HoldToPlace,
    holds_run_config,
)
from synth_pipelines.dbt_like_checks.results import BUCKETS, is_skipped
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.settings import Settings

CHECK_FAILURE_SENSOR = "check_failure_sensor"
# Execution record statuses, by value: the enum itself is not part of Dagster's public API.
FINISHED = ("SUCCEEDED", "FAILED")


def _evaluation(record) -> dg.AssetCheckEvaluation | None:
    event = record.event.dagster_event if record.event else None
    data = event.event_specific_data if event else None
    return data if isinstance(data, dg.AssetCheckEvaluation) else None


def _read_cursor(
    cursor: str | None, check_keys: Sequence[dg.AssetCheckKey]
) -> tuple[dict[str, int], set[str]]:
    """Per check (`asset:name`), the id of the last execution acted on; and the checks whose
    hold this sensor requested and has not lifted since (the run placing it may not have run
    yet). Checks no longer defined are dropped; a held check recorded by its bare name (before
    issue 21: `face_inventory__near_duplicates`, `perplexity`) is read as the check it is now."""
    state = json.loads(cursor) if cursor else {}
    if "seen" not in state:  # the cursor before holds moved to a job: the map alone
        state = {"seen": state, "held": []}
    current: dict[str, str] = {}
    for key in check_keys:
        spelled = key.to_user_string()
        current.setdefault(f"{key.asset_key.to_user_string()}__{key.name}", spelled)
        current.setdefault(key.name, spelled)
        current[spelled] = spelled
    seen = {name: id_ for name, id_ in state["seen"].items() if name in current.values()}
    return seen, {current[name] for name in state["held"] if name in current}


def _run_key(acted: list[str]) -> str:
    """One key per set of check executions acted on: a re-evaluation of the same results (the
    daemon retrying a tick) requests the same run, which the daemon then skips."""
    return "check-holds:" + hashlib.sha256(",".join(sorted(acted)).encode()).hexdigest()[:16]


def build_check_failure_sensor(
    settings: Settings, check_keys: Sequence[dg.AssetCheckKey]
) -> dg.SensorDefinition:
    """The sensor over `check_keys` (every check in the definitions)."""

    @dg.sensor(
        name=CHECK_FAILURE_SENSOR,
        job_name=APPLY_CHECK_HOLDS_JOB,  # by name, as the lines' sensors target their jobs
        minimum_interval_seconds=settings.checks.sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Asks apply_check_holds_job to record failed error-severity checks in the factory "
            "database, which pauses delivery from the buckets they name (requests touching them "
            "wait as backordered) until a later run of the check passes."
        ),
    )
    def check_failure_sensor(
        context: dg.SensorEvaluationContext, factory_db: FactoryDatabaseResource
    ) -> dg.SensorResult:
        seen, held = _read_cursor(context.cursor, check_keys)
        latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(
            list(check_keys)
        )
        open_checks = {hold.check for hold in open_holds(factory_db.get_db())}
        place: list[HoldToPlace] = []
        lift: list[HoldToLift] = []
        acted: list[str] = []
        for key, record in latest.items():
            name, asset = key.to_user_string(), key.asset_key.to_user_string()
            if seen.get(name) == record.id or record.status.value not in FINISHED:
                continue
            seen[name] = record.id
            evaluation = _evaluation(record)
            if evaluation is None:  # the check raised: no verdict on the data either way
                continue
            if is_skipped(evaluation):  # it looked at nothing: no verdict either, hold or lift
                continue
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                buckets = evaluation.metadata.get(BUCKETS)
                place.append(
                    HoldToPlace(
                        check_name=key.name,
                        asset=asset,
                        buckets=list(buckets.value) if buckets else [],
                        description=evaluation.description or "",
                        run_id=record.run_id,
                    )
                )
                held.add(name)
            elif name in open_checks or name in held:
                lift.append(HoldToLift(check_name=key.name, asset=asset, run_id=record.run_id))
                held.discard(name)
            else:
                continue
            acted.append(f"{name}@{record.id}")
        cursor = json.dumps({"seen": seen, "held": sorted(held)}, sort_keys=True)
        if not acted:
            return dg.SensorResult(skip_reason="no hold to place or lift", cursor=cursor)
        context.log.info(
            f"requesting holds on {[f'{h.asset}:{h.check_name}' for h in place]}, "
            f"lifts of {[f'{h.asset}:{h.check_name}' for h in lift]}"
        )
        request = dg.RunRequest(run_key=_run_key(acted), run_config=holds_run_config(place, lift))
        return dg.SensorResult(run_requests=[request], cursor=cursor)

    return check_failure_sensor
