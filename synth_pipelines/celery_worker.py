"""The Celery app the workers run (`celery -A synth_pipelines.celery_worker worker`, started by
`make workers`): dagster-celery's step task on the broker and backend of the environment's
settings. Only worker processes import this module.

The code location is loaded here, once, as a code server loads it: every step task then finds
the job already built from this worker's settings instead of importing it on its first task.
"""

import synth_pipelines.definitions  # noqa: F401
from synth_pipelines.execution import worker_app

app = worker_app()
