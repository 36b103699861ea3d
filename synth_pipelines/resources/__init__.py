"""Dagster ConfigurableResource classes wrapping core/ backends, one module per concern."""
