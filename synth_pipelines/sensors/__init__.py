"""Sensors and the schedules that start runs for a line."""
