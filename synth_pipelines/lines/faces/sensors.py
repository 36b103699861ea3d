"""Keep the face inventory full: a refill sensor reacting to levels, and a nightly top-up."""

import time

import dagster as dg

from synth_pipelines.core.delivery.requests import backordered_demand
from synth_pipelines.core.faces.buckets import ALL_BUCKETS, Bucket
from synth_pipelines.core.faces.inventory import inventory_levels
from synth_pipelines.core.faces.refill_plan import low_buckets, plan_refills
from synth_pipelines.lines.dynamic import partition_job
from synth_pipelines.partitions import bucket_for_partition, face_buckets, partition_for_bucket
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.settings import Settings

FACE_INVENTORY = dg.AssetKey("face_inventory")
REFILL_JOB = "face_inventory_refill"
REFILL_SENSOR = "inventory_refill_sensor"
TOP_UP_SCHEDULE = "nightly_inventory_top_up"


def build_refill_job(gpu: bool = False):
    """The refill job; `gpu` when the generator runs on a GPU (a diffusion model or a GAN)."""
    return partition_job(
        REFILL_JOB,
        # Checks on the whole inventory run in validation_job, not in every bucket's refill.
        dg.AssetSelection.assets(FACE_INVENTORY).without_checks(),
        face_buckets,
        "Refill one face bucket (one partition of face_inventory).",
        gpu=gpu,
    )


refill_job = build_refill_job()
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def buckets_in_flight(instance: dg.DagsterInstance) -> set[str]:
    """Bucket keys with a face_inventory run queued or in progress, however it was launched."""
    busy: set[str] = set()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT)):
        refills = run.job_name == REFILL_JOB or FACE_INVENTORY in (run.asset_selection or ())
        partition = run.tags.get("dagster/partition")
        if refills and partition:
            busy.add(bucket_for_partition(partition).key)
    return busy


def starved_buckets(
    instance: dg.DagsterInstance, bucket_keys: list[str], backoff_seconds: int
) -> dict[str, str]:
    """Buckets whose latest refill, within the back-off window, ran out of attempts.

    A bucket the classifier rarely agrees with would otherwise be re-requested every tick;
    the value says why, for the sensor's log and the UI.
    """
    since = time.time() - backoff_seconds
    starved = {}
    for key in bucket_keys:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=FACE_INVENTORY,
                asset_partitions=[str(partition_for_bucket(Bucket.parse(key)))],
                after_timestamp=since,
            ),
            limit=1,
        ).records
        if not records or records[0].asset_materialization is None:
            continue
        metadata = records[0].asset_materialization.metadata
        requested = metadata["requested"].value if "requested" in metadata else 0
        accepted = metadata["added"].value + metadata["already_stored"].value
        if accepted < requested:
            starved[key] = (
                f"last refill accepted {accepted} of {requested} after "
                f"{metadata['generated'].value} attempts; retrying after {backoff_seconds} s"
            )
    return starved


def refill_run_config(count: int | None, seed: int | None = None) -> dict:
    config = {} if count is None else {"count": count}
    if seed is not None:
        config["seed"] = seed
    return {"ops": {"face_inventory": {"config": config}}}


def build_inventory_refill_sensor(settings: Settings) -> dg.SensorDefinition:
    """A sensor that requests a refill run for each bucket below its low-water mark."""

    @dg.sensor(
        name=REFILL_SENSOR,
        job_name=REFILL_JOB,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Requests a face_inventory run for each bucket whose available faces fall below the "
            "low-water mark or below backordered demand, sized to bring it back to target plus "
            "that demand; skips buckets already refilling."
        ),
    )
    def inventory_refill_sensor(
        context: dg.SensorEvaluationContext, factory_db: FactoryDatabaseResource
    ) -> dg.SensorResult | dg.SkipReason:
        db = factory_db.get_db()
        levels = inventory_levels(db)
        # Backordered requests are demand on top of the target: they wait for these faces.
        demand = backordered_demand(db)
        low_water = {key: settings.faces.low_water_mark(key) for key in settings.faces.targets}
        low = low_buckets(levels, settings.faces.targets, low_water, demand)
        plan = plan_refills(
            levels,
            settings.faces.targets,
            low_water,
            demand,
            in_flight=buckets_in_flight(context.instance) if low else set(),
            backoff=starved_buckets(context.instance, low, settings.faces.refill_backoff_seconds),
        )
        for key in plan.in_flight:
            context.log.info(f"{key}: below low-water mark, refill already in flight")
        for key, why in plan.backing_off.items():
            if key not in plan.in_flight:
                context.log.warning(f"{key}: below low-water mark, backing off: {why}")
        if not plan.refills:
            return dg.SkipReason(plan.summary())
        requests = [
            dg.RunRequest(
                partition_key=partition_for_bucket(Bucket.parse(refill.bucket)),
                run_config=refill_run_config(refill.count),
                tags={"synth/trigger": "refill_sensor", "synth/bucket": refill.bucket},
            )
            for refill in plan.refills
        ]
        context.log.info(f"requesting refills: {[r.tags['synth/bucket'] for r in requests]}")
        return dg.SensorResult(run_requests=requests)

    return inventory_refill_sensor


def build_inventory_top_up_schedule(settings: Settings) -> dg.ScheduleDefinition:
    """Nightly: one run per bucket (not already refilling) that tops it up to target."""

    @dg.schedule(
        name=TOP_UP_SCHEDULE,
        cron_schedule=settings.faces.refill_cron,
        job_name=REFILL_JOB,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Tops every face bucket up to its target (the run computes the deficit).",
    )
    def nightly_inventory_top_up(context: dg.ScheduleEvaluationContext):
        busy = buckets_in_flight(context.instance)
        return [
            dg.RunRequest(
                partition_key=partition_for_bucket(bucket),
                run_config=refill_run_config(None),
                tags={"synth/trigger": "nightly_top_up", "synth/bucket": bucket.key},
            )
            for bucket in ALL_BUCKETS
            if bucket.key not in busy
        ]

    return nightly_inventory_top_up
