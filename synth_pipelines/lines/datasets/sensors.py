"""React to dataset requests: package new ones, retry backordered ones when stock allows,
and expire old archives on a schedule."""

import dagster as dg

from synth_pipelines.core.delivery.packaging import servable_backorders
from synth_pipelines.core.delivery.requests import requests_in, retired_requests
from synth_pipelines.lines.datasets.assets import DATASET_PACKAGE, expire_datasets_job
from synth_pipelines.lines.dynamic import (
    attempt_run_request,
    partition_job,
    partitioned_runs,
    requested_attempts,
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


def build_dataset_request_sensor(settings: Settings) -> dg.SensorDefinition:
    """New pending requests, and backordered ones the inventory now covers, become runs."""

    @dg.sensor(
        name=DATASET_REQUEST_SENSOR,
        job_name=PACKAGE_JOB,
        minimum_interval_seconds=settings.datasets.sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Adds a dataset_requests partition per new request and requests a dataset_package "
            "run for it; re-requests backordered requests once the inventory covers them."
        ),
    )
    def dataset_request_sensor(
        context: dg.SensorEvaluationContext, factory_db: FactoryDatabaseResource
    ) -> dg.SensorResult | dg.SkipReason:
        db = factory_db.get_db()
        # The cursor maps each request still waiting to the attempt number already requested,
        # so a request is picked once per attempt, across ticks and daemon restarts.
        requested: dict[str, int] = requested_attempts(context)
        waiting: dict[str, int] = {}
        run_requests: list[dg.RunRequest] = []
        for request in requests_in(db, ("pending",)):
            waiting[request.id] = request.attempts
            if requested.get(request.id) != request.attempts:
                run_requests.append(_run_request(request.id, request.attempts, "new"))
        backordered = requests_in(db, ("backordered",))  # oldest first: first come, first served
        for request in backordered:
            # Remember only attempts actually requested (-1: none), so a request seen while
            # short of stock or held is still requested once it can be served.
            waiting[request.id] = requested.get(request.id, -1)
        for request in servable_backorders(db, backordered):
            if requested.get(request.id) != request.attempts:
                waiting[request.id] = request.attempts
                run_requests.append(_run_request(request.id, request.attempts, "restocked"))
        return partitioned_runs(
            context,
            dataset_requests,
            run_requests,
            waiting,
            "request",
            "a new request, or stock for a backordered one",
            DATASET_REQUEST_SENSOR,
        )

    return dataset_request_sensor


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
