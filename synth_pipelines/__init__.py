"""synth_pipelines: a synthetic-data factory built as Dagster software-defined assets."""

__version__ = "0.1.0"
