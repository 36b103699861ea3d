"""What the daemon and run launcher do, in this process: for `synth demo`, benchmarks and tests."""

import dagster as dg


def tick_and_run_in_process(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    sensor_name: str,
    job_name: str,
    partitions_def: dg.DynamicPartitionsDefinition,
    cursor: str | None = None,
    raise_on_error: bool = True,
) -> tuple[list[dg.ExecuteInProcessResult], str | None]:
    """One tick of `sensor_name`, its dynamic partitions added, and the runs it asks for executed
    in this process. Returns the runs and the sensor's new cursor."""
    tick = evaluate_sensor(defs, instance, sensor_name, cursor)
    for request in tick.dynamic_partitions_requests or []:
        if isinstance(request, dg.DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(partitions_def.name, key)
        else:
            instance.add_dynamic_partitions(partitions_def.name, request.partition_keys)
    job = defs.resolve_job_def(job_name)
    runs = [
        job.execute_in_process(
            partition_key=run.partition_key,
            instance=instance,
            tags={**run.tags, **daemon_tags(sensor_name, run.run_key)},
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            raise_on_error=raise_on_error,
        )
        for run in tick.run_requests or []
    ]
    return runs, tick.cursor


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
