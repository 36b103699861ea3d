"""The job that places and lifts delivery holds: what check_failure_sensor decides, written to
the factory database by an op (a sensor only queries and requests runs)."""

import dagster as dg  # no `from __future__ import annotations`: Dagster reads the config types

from synth_pipelines.core.checks.holds import lift_hold, record_failure, resolve_failure
from synth_pipelines.core.checks.names import legacy_asset, unprefixed
from synth_pipelines.resources.database import FactoryDatabaseResource

APPLY_CHECK_HOLDS_JOB = "apply_check_holds_job"
APPLY_CHECK_HOLDS_OP = "apply_check_holds"


class HoldToPlace(dg.Config):
    """An error-severity check that failed: hold the buckets it names."""

    check_name: str
    asset: str
    buckets: list[str]
    description: str
    run_id: str  # the run whose check failed


class HoldToLift(dg.Config):
    """A check that passed again (check_failure_sensor fills `run_id`): lift its hold, if one is
    open. Or, launched by a person from the Launchpad, a hold to lift by hand: give `reason`
    (and `lifted_by`); the lift is audited, and the run fails if the check holds nothing."""

    check_name: str
    run_id: str = ""  # the run whose check passed
    # The check's asset; empty in a lift the sensor requested before holds named their asset.
    asset: str = ""
    reason: str = ""
    lifted_by: str = ""


class CheckHoldsConfig(dg.Config):
    place: list[HoldToPlace] = []
    lift: list[HoldToLift] = []


def holds_run_config(place: list[HoldToPlace], lift: list[HoldToLift]) -> dg.RunConfig:
    """The run config of one apply_check_holds_job run."""
    return dg.RunConfig(ops={APPLY_CHECK_HOLDS_OP: CheckHoldsConfig(place=place, lift=lift)})


@dg.op(
    name=APPLY_CHECK_HOLDS_OP,
    out=dg.Out(dg.Nothing),
    # One slot (the instance's default pool limit): two hold runs never write at once.
    pool="check_holds",
    description="Records failed error-severity checks as delivery holds and lifts the holds of "
    "checks that passed again.",
)
def apply_check_holds(
    context: dg.OpExecutionContext, config: CheckHoldsConfig, factory_db: FactoryDatabaseResource
):
    db = factory_db.get_db()
    opened, updated, lifted = [], [], []
    # A run requested before issue 21 names checks `<asset>__<name>`: read as they are named now.
    for hold in config.place:
        name = unprefixed(hold.asset, hold.check_name)
        new = record_failure(db, name, hold.asset, hold.buckets, hold.description, hold.run_id)
        (opened if new else updated).append(f"{hold.asset}:{name}")
    for hold in config.lift:
        asset = hold.asset or legacy_asset(hold.check_name)
        name = unprefixed(asset, hold.check_name) if asset else hold.check_name
        if hold.reason:
            actor = hold.lifted_by or f"launchpad run {context.run_id}"
            check = f"{asset}:{name}" if asset else name
            lifted.append(lift_hold(db, check, actor=actor, reason=hold.reason).check)
        elif resolve_failure(db, asset, name, hold.run_id or context.run_id):
            lifted.append(f"{asset}:{name}" if asset else name)
    if opened:
        context.log.warning(f"delivery holds opened by failed checks: {opened}")
    if lifted:
        context.log.info(f"delivery holds closed by passing checks: {lifted}")
    yield dg.Output(
        None,
        metadata={
            "opened": dg.MetadataValue.json(opened),
            "updated": dg.MetadataValue.json(updated),
            "lifted": dg.MetadataValue.json(lifted),
            "buckets_held": dg.MetadataValue.json(
                sorted({b for hold in config.place for b in hold.buckets})
            ),
        },
    )


@dg.job(
    name=APPLY_CHECK_HOLDS_JOB,
    executor_def=dg.in_process_executor,
    description="Places and lifts delivery holds as check_failure_sensor asks (run config).",
)
def apply_check_holds_job() -> None:
    apply_check_holds()
