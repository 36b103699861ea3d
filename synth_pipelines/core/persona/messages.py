"""The message model every export parser produces and every later step consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

EXPORT_FORMATS = ("whatsapp", "sms_xml", "mbox", "jsonl")


@dataclass(frozen=True)
class Message:
    """One message of an export: who sent it, when, in which thread, and whether the persona did.

    `from_persona` marks the persona's own messages (training targets); the others are context.
    """

    sender: str
    text: str
    timestamp: datetime | None
    thread: str
    from_persona: bool


@dataclass(frozen=True)
class ParsedExport:
    """A parsed export: its messages in order, and every participant or contact name the export's
    own metadata names (senders, contact names, address-book display names) for anonymization."""

    format: str
    messages: list[Message]
    participants: list[str] = field(default_factory=list)


class ExportFormatError(ValueError):
    """An export that cannot be parsed; `line` is 1-based where the format has lines."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)
