"""Flux LoRAs: a subject's likeness from a handful of photos, trained and generated on prompt."""
