"""Persona adapters: consent, ingest, anonymization, training and serving of a person's style."""
