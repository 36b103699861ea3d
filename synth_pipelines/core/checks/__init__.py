"""Every check computation, in plain Python, each returning a `CheckOutcome` (outcome.py) under
a name defined once (names.py): the face inventory's and delivered datasets' checks (faces.py,
datasets.py), a tabular job's schema checks (tabular_schema.py), a persona adapter's
(personas.py), a Flux LoRA's samples' (flux_samples.py), and YAML data tests (spec.py parses
them, kinds.py registers their kinds, expectations.py runs them through Great Expectations).
Delivery holds (holds.py) record the failures. The Dagster side is in `dbt_like_checks/`."""
