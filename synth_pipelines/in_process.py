"""What the daemon and run launcher do, in this process: for `synth demo`, the CLI, benchmarks
and tests. Nothing the daemon loads imports this module."""

import dagster as dg

from synth_pipelines.dbt_like_checks.sensors import CHECK_FAILURE_SENSOR
from synth_pipelines.lines.datasets.sensors import DATASET_REQUEST_SENSOR
from synth_pipelines.lines.flux.sensors import SUBJECT_SENSOR
from synth_pipelines.lines.imagesets.sensors import IMAGE_SET_SENSOR
from synth_pipelines.lines.personas.sensors import PERSONA_SOURCE_SENSOR
from synth_pipelines.lines.tabular.sensors import TABULAR_JOB_SENSOR

QUIET = {"console": {"config": {"log_level": "WARNING"}}}


def tick_and_run_in_process(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    sensor_name: str,
    cursor: str | None = None,
    raise_on_error: bool = True,
) -> tuple[list[dg.ExecuteInProcessResult], str | None]:
    """One tick of `sensor_name`, the dynamic partitions it asks for added (or removed), and the
    runs it requests executed in this process on the sensor's own job, with their run config.
    Returns the runs and the sensor's new cursor."""
    sensor = defs.resolve_sensor_def(sensor_name)
    tick = evaluate_sensor(defs, instance, sensor, cursor)
    for request in tick.dynamic_partitions_requests or []:
        if isinstance(request, dg.DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
        else:
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    job = defs.resolve_job_def(sensor.job_name)
    runs = [
        job.execute_in_process(
            partition_key=run.partition_key,
            instance=instance,
            tags={**run.tags, **daemon_tags(sensor_name, run.run_key)},
            run_config={**run.run_config, "loggers": QUIET},
            raise_on_error=raise_on_error,
        )
        for run in tick.run_requests or []
    ]
    return runs, tick.cursor


def _runner(sensor_name: str):
    def run(
        defs: dg.Definitions,
        instance: dg.DagsterInstance,
        cursor: str | None = None,
        raise_on_error: bool = True,
    ) -> tuple[list[dg.ExecuteInProcessResult], str | None]:
        return tick_and_run_in_process(defs, instance, sensor_name, cursor, raise_on_error)

    run.__doc__ = f"One tick of {sensor_name} and the runs it asks for, in this process."
    return run


# What the daemon does for each line's sensor, by name (demo, CLI, benchmarks, tests).
package_requests_in_process = _runner(DATASET_REQUEST_SENSOR)
run_tabular_jobs_in_process = _runner(TABULAR_JOB_SENSOR)
run_persona_training_in_process = _runner(PERSONA_SOURCE_SENSOR)
run_subjects_in_process = _runner(SUBJECT_SENSOR)
run_image_sets_in_process = _runner(IMAGE_SET_SENSOR)
apply_check_holds_in_process = _runner(CHECK_FAILURE_SENSOR)


def daemon_tags(sensor_name: str, run_key: str | None) -> dict[str, str]:
    """The tags the sensor daemon puts on the runs it launches. The daemon skips a run request
    whose run key a run of the same sensor already carries, so with these a daemon started later
    on the same instance (`make ui` after `synth demo`) does not run the same attempt again,
    although its own cursor starts empty."""
    if run_key is None:
        return {}
    return {"dagster/sensor_name": sensor_name, "dagster/run_key": run_key}


def evaluate_sensor(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    sensor: str | dg.SensorDefinition,
    cursor: str | None = None,
) -> dg.SensorResult:
    """One evaluation of `sensor` (a name or the definition) with the definitions' resources,
    as the daemon runs it: inside the context, so context-manager resources (the LLM) work."""
    if isinstance(sensor, str):
        sensor = defs.resolve_sensor_def(sensor)
    with dg.build_sensor_context(
        instance=instance, resources=defs.resources, cursor=cursor
    ) as context:
        return sensor(context)
