"""Dynamic partitions stay bounded: a daily job removes the partitions of keys whose line says
they are retired (a request expired, a job completed, a consent revoked), once they are older
than SYNTH_PARTITION_RETENTION_DAYS.

A SQLite instance slows to a halt near 36k partitions of one definition (dagster issue 16260),
and every request, job, persona, subject and image set adds one. Removing a partition key
deletes neither runs nor materializations: the runs' history (their tags name the partition)
and the asset's events stay in the instance. The sensors add partitions only for keys still
waiting for a run (pending, backordered, confirmed, active), which a retired key never is
again, so they never bring one back.

Each line declares what it retires (a `Retention` beside the sensor that adds its partitions);
`build_defs` makes one op per partitions definition (its metadata: how many it removed and
kept), one job and its schedule.
"""

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg

from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.lines.run_config import env_default
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.settings import RetentionSettings, Settings

RETENTION_JOB = "partition_retention_job"
RETENTION_SCHEDULE = "partition_retention_schedule"
# Removed keys named in an op's metadata (the count is always complete).
LISTED_KEYS = 20

# Of the keys Dagster has partitions for, those retired no later than the datetime.
Retired = Callable[[FactoryDatabase, Iterable[str], datetime], set[str]]


@dataclass(frozen=True)
class Retention:
    """What one line retires: the keys of `partitions_def` that `retired` picks, as `rule`
    says in words (shown on the op and in its metadata)."""

    partitions_def: dg.DynamicPartitionsDefinition
    retired: Retired
    rule: str

    @property
    def name(self) -> str:
        return self.partitions_def.name


@dataclass(frozen=True)
class RetentionReport:
    """What one retention pass did to one partitions definition."""

    name: str
    removed: list[str]
    kept: int
    before: datetime
    seconds: float


def retire_partitions(
    instance: dg.DagsterInstance,
    db: FactoryDatabase,
    retention: Retention,
    days: int,
    now: datetime | None = None,
) -> RetentionReport:
    """Remove the partitions of `retention` whose keys its line retired at least `days` days
    before `now` (default: the clock). Only keys Dagster has are asked about, in chunks, so the
    pass costs what the partitions cost, not the whole history of rows."""
    started = time.perf_counter()
    before = (now or utcnow()) - timedelta(days=days)
    known = instance.get_dynamic_partitions(retention.name)
    removed = sorted(retention.retired(db, known, before))
    for key in removed:
        instance.delete_dynamic_partition(retention.name, key)
    return RetentionReport(
        retention.name, removed, len(known) - len(removed), before, time.perf_counter() - started
    )


def retention_config(retention: RetentionSettings) -> type[dg.Config]:
    """The run config of every retention op, its default the environment's."""

    class RetentionRunConfig(dg.Config):
        """How old a retired key's partition must be to go (revocations go at any age)."""

        days: int = env_default(
            retention, "days", "Days a retired key keeps its partition before it is removed."
        )

    return RetentionRunConfig


def _retention_op(retention: Retention, settings: Settings) -> dg.OpDefinition:
    RetentionRunConfig = retention_config(settings.retention)

    @dg.op(
        name=f"retire_{retention.name}",
        description=f"Remove the {retention.name} partitions of {retention.rule}.",
        tags={"synth/partitions": retention.name},
    )
    def _retire(
        context: dg.OpExecutionContext,
        config: RetentionRunConfig,  # type: ignore[valid-type]
        factory_db: FactoryDatabaseResource,
    ) -> int:
        report = retire_partitions(context.instance, factory_db.get_db(), retention, config.days)
        context.log.info(
            f"{retention.name}: removed {len(report.removed)} partition(s) of keys retired "
            f"before {report.before.isoformat()}, kept {report.kept}"
        )
        context.add_output_metadata(
            {
                "partitions_def": retention.name,
                "removed": len(report.removed),
                "kept": report.kept,
                "retired_before": report.before.isoformat(),
                "rule": retention.rule,
                "removed_keys": dg.MetadataValue.json(report.removed[:LISTED_KEYS]),
                "seconds": round(report.seconds, 3),
            }
        )
        return len(report.removed)

    return _retire


def build_retention_job(settings: Settings, retentions: Sequence[Retention]) -> dg.JobDefinition:
    """One job, one op per partitions definition (independent: one failing leaves the others)."""
    ops = [_retention_op(retention, settings) for retention in retentions]
    names = [retention.name for retention in retentions]
    if len(set(names)) != len(names):
        raise ValueError(f"one Retention per partitions definition, got {names}")

    @dg.job(
        name=RETENTION_JOB,
        executor_def=dg.in_process_executor,
        description=(
            "Remove the dynamic partitions of retired keys (expired requests, completed jobs "
            "and image sets, revoked personas and subjects) older than "
            "SYNTH_PARTITION_RETENTION_DAYS; their runs and materializations stay."
        ),
    )
    def partition_retention_job() -> None:
        for op in ops:
            op()

    return partition_retention_job


def build_defs(settings: Settings, retentions: Sequence[Retention]) -> dg.Definitions:
    """The retention job over `retentions` and its schedule (SYNTH_PARTITION_RETENTION_CRON)."""
    job = build_retention_job(settings, retentions)
    schedule = dg.ScheduleDefinition(
        name=RETENTION_SCHEDULE,
        cron_schedule=settings.retention.cron,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Daily: remove the dynamic partitions of retired keys (see the job).",
    )
    return dg.Definitions(jobs=[job], schedules=[schedule])
