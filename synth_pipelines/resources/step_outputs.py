"""Values passed between the steps of one run, kept in the object store: what a sharded tabular
job's steps hand each other (its shard plan, each shard's counts). They are small JSON values;
the store is the one place every Celery worker, on any machine, reads and writes, where
Dagster's default IO manager would keep them on the disk of the worker that made them."""

import json

import dagster as dg

from synth_pipelines.resources.object_store import ObjectStoreResource

STEP_OUTPUTS = "step_outputs"  # the IO manager's resource key


def run_prefix(run_id: str) -> str:
    """Where the step outputs of run `run_id` are kept: delete it once the run is done."""
    return f"dagster/steps/{run_id}/"


class StepOutputIOManager(dg.ConfigurableIOManager):
    """JSON values in the object store under
    `dagster/steps/<run id>/<step key>/<output>[/<mapping key>].json`; an asset's own output
    (None: its data is in the store already) is not written."""

    object_store: ObjectStoreResource

    @staticmethod
    def _key(context: dg.OutputContext) -> str:
        # run id, step key, output name and, for a dynamic output, its mapping key
        run_id, *rest = context.get_identifier()
        return f"{run_prefix(run_id)}{'/'.join(rest)}.json"

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is None:
            return
        body = json.dumps(obj, sort_keys=True).encode()
        self.object_store.get_store().put_bytes(self._key(context), body, "application/json")

    def load_input(self, context: dg.InputContext) -> object:
        upstream = context.upstream_output
        if upstream is None:
            raise dg.Failure(f"input {context.name} has no upstream step output")
        return json.loads(self.object_store.get_store().get_bytes(self._key(upstream)))
