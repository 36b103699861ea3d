"""Face generation, classification and inventory bookkeeping."""
