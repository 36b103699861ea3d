"""Clients of the HTTP API, for the CLI, the demo and scripts: one per line on a shared base."""
