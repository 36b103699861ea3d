"""dbt_like_checks: the Dagster side of every check. Data tests declared in YAML beside the code
(`*.yml` in this folder, plus any folder named by SYNTH_CHECKS_DIR) compiled to asset checks;
the image quality, privacy and delivery checks on faces and datasets; the one adapter from a
core `CheckOutcome` to an `AssetCheckResult` (results.py) that the lines' in-step checks use too;
the validation job and schedule; the check-failure sensor and the hold job it requests."""
