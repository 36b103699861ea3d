"""dbt_like_checks: data tests declared in YAML beside the code (`*.yml` in this folder, plus
any folder named by SYNTH_CHECKS_DIR), compiled to Dagster asset checks; the image quality,
privacy and delivery checks on faces and datasets; the validation job and schedule."""
