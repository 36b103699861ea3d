"""Assets, one module per product line."""
