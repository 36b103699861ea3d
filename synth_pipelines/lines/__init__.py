"""The product lines, one package each: `assets.py` (what is made), `sensors.py` (what starts
it: the line's jobs beside the sensors and schedules that launch them by name) and
`definitions.py` (`build_defs(settings) -> dg.Definitions`). `synth_pipelines.definitions`
merges them; the lines' business logic lives in `synth_pipelines.core.<line>`."""
