"""React to check results: a failed error-severity check opens a delivery hold on the buckets
it names; the next passing run of the same check closes it."""

import json
from collections.abc import Sequence

import dagster as dg

from synth_pipelines.core.checks.holds import record_failure, resolve_failure
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.settings import Settings

CHECK_FAILURE_SENSOR = "check_failure_sensor"
# Execution record statuses, by value: the enum itself is not part of Dagster's public API.
FINISHED = ("SUCCEEDED", "FAILED")


def _evaluation(record) -> dg.AssetCheckEvaluation | None:
    event = record.event.dagster_event if record.event else None
    data = event.event_specific_data if event else None
    return data if isinstance(data, dg.AssetCheckEvaluation) else None


def build_check_failure_sensor(
    settings: Settings, check_keys: Sequence[dg.AssetCheckKey]
) -> dg.SensorDefinition:
    """The sensor over `check_keys` (every check in the definitions)."""

    @dg.sensor(
        name=CHECK_FAILURE_SENSOR,
        minimum_interval_seconds=settings.check_sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Records failed error-severity checks in the factory database and pauses delivery "
            "from the buckets they name (requests touching them wait as backordered) until a "
            "later run of the check passes."
        ),
    )
    def check_failure_sensor(
        context: dg.SensorEvaluationContext, factory_db: FactoryDatabaseResource
    ) -> dg.SensorResult:
        db = factory_db.get_db()
        # The cursor keeps, per check, the id of the last execution acted on.
        seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(
            list(check_keys)
        )
        opened, closed = [], []
        for key, record in latest.items():
            name = key.to_user_string()
            if seen.get(name) == record.id or record.status.value not in FINISHED:
                continue
            evaluation = _evaluation(record)
            if evaluation is None:  # the check raised: no verdict on the data either way
                seen[name] = record.id
                continue
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                buckets = evaluation.metadata.get("buckets")
                if record_failure(
                    db,
                    check_name=key.name,
                    asset=key.asset_key.to_user_string(),
                    buckets=list(buckets.value) if buckets else [],
                    description=evaluation.description or "",
                    run_id=record.run_id,
                ):
                    opened.append(key.name)
            elif resolve_failure(db, key.name, record.run_id):
                closed.append(key.name)
            seen[name] = record.id
        if opened:
            context.log.warning(f"delivery holds opened by failed checks: {opened}")
        if closed:
            context.log.info(f"delivery holds closed by passing checks: {closed}")
        return dg.SensorResult(
            skip_reason=(
                f"{len(opened)} hold(s) opened, {len(closed)} closed"
                if opened or closed
                else "no new check results"
            ),
            cursor=json.dumps(seen, sort_keys=True),
        )

    return check_failure_sensor
