"""Time in the factory: UTC, aware datetimes, ISO 8601 with an offset. One definition for every
line (the database hands SQLite values back naive)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: read them as the UTC they were written in."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def iso(moment: datetime | None) -> str | None:
    """`moment` as ISO 8601 with its UTC offset (naive SQLite values read as UTC); None stays."""
    moment = aware(moment)
    return moment.isoformat() if moment else None
