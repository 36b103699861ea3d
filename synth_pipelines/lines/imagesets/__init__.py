"""The image sets line's Dagster code; its logic is in synth_pipelines.core.imagesets."""
