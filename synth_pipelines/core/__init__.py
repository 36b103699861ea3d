"""Domain code with no Dagster import. Assets, sensors and the API call into it."""
