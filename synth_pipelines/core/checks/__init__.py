"""Data tests declared in YAML (dbt's schema.yml, for Dagster assets), run through Great
Expectations; plus the checks on faces and datasets that need more than a column test."""
