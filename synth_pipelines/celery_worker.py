"""The Celery app the workers run (`celery -A synth_pipelines.celery_worker worker`, started by
`make workers`): dagster-celery's step task on the broker and backend of the environment's
settings. Only worker processes import this module."""

from synth_pipelines.execution import worker_app

app = worker_app()
