"""React to persona uploads and revocations: a personas partition and a training run per new
upload; the partition removed once the persona's consent is revoked."""

from typing import TYPE_CHECKING

import dagster as dg
from sqlalchemy import func, select

from synth_pipelines.core.storage.models import Persona, PersonaSource
from synth_pipelines.partitions import personas
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.sensors.dynamic import removing_partitions, runs_per_attempt
from synth_pipelines.sensors.in_process import tick_and_run_in_process
from synth_pipelines.settings import Settings

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

PERSONA_JOB = "persona_training_job"


def build_persona_source_sensor(
    settings: Settings, job: "UnresolvedAssetJobDefinition"
) -> dg.SensorDefinition:
    @dg.sensor(
        name="persona_source_sensor",
        job=job,
        minimum_interval_seconds=settings.persona_sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Adds a personas partition when a persona's first export arrives and requests a "
            "corpus → dataset → adapter run after each upload; removes the partition of a "
            "persona whose consent was revoked."
        ),
    )
    def persona_source_sensor(
        context: dg.SensorEvaluationContext, factory_db: FactoryDatabaseResource
    ) -> dg.SensorResult:
        # The "attempt" of a persona is its number of uploads: one run per upload.
        with factory_db.get_db().session() as session:
            uploads = dict(
                session.execute(
                    select(PersonaSource.persona_id, func.count())
                    .join(Persona, Persona.id == PersonaSource.persona_id)
                    .where(Persona.status == "active")
                    .group_by(PersonaSource.persona_id)
                ).all()
            )
            revoked = set(
                session.scalars(select(Persona.id).where(Persona.status == "revoked")).all()
            )
        result = runs_per_attempt(
            context, personas, dict(sorted(uploads.items())), "persona_source_sensor", "persona"
        )
        return removing_partitions(context, personas, result, revoked)

    return persona_source_sensor


def run_persona_training_in_process(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    cursor: str | None = None,
    raise_on_error: bool = True,
) -> tuple[list[dg.ExecuteInProcessResult], str | None]:
    """One tick of persona_source_sensor and its runs, in this process (demo, CLI, tests)."""
    return tick_and_run_in_process(
        defs, instance, "persona_source_sensor", PERSONA_JOB, personas, cursor, raise_on_error
    )
