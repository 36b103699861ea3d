"""Generic JSONL: one `{"sender", "text", "timestamp"?, "thread"?}` object per line."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from synth_pipelines.core.persona.messages import ExportFormatError, Message, ParsedExport
from synth_pipelines.core.persona.parsers_encoding import decode_utf8, split_lines
from synth_pipelines.core.persona.parsers_identity import PersonaIdentity

DEFAULT_THREAD = "default"
_NUMBER = re.compile(r"^\s*-?\d+(?:\.\d+)?\s*$")
# Epoch seconds past this are year 5138+: almost certainly milliseconds.
_MILLISECONDS_HINT = 100_000_000_000


_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _optional_string(record: dict[str, Any], name: str, line: int) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ExportFormatError(f"field '{name}' must be a string, got {_json_type(value)}", line)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ExportFormatError(
            f"field '{name}' holds an unpaired surrogate escape (\\ud800-\\udfff)", line
        ) from None
    return value


def _required_string(record: dict[str, Any], name: str, line: int) -> str:
    value = _optional_string(record, name, line)
    if value is None:
        raise ExportFormatError(f"field '{name}' is missing or null", line)
    return value


def _timestamp(value: Any, line: int) -> datetime | None:
    """None, epoch seconds (number or numeric string) or an ISO 8601 string."""
    if value is None:
        return None
    if isinstance(value, str) and not _NUMBER.match(value):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise ExportFormatError(
                f"field 'timestamp' {value!r} is neither ISO 8601 nor epoch seconds", line
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ExportFormatError(
            f"field 'timestamp' must be an ISO 8601 string or epoch seconds, "
            f"got {_json_type(value)}",
            line,
        )
    seconds = float(value)
    try:
        if abs(seconds) >= _MILLISECONDS_HINT:
            raise ValueError("out of range")
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise ExportFormatError(
            f"field 'timestamp' {value!r} is out of range for epoch seconds "
            "(milliseconds? divide by 1000)",
            line,
        ) from None


def parse_jsonl(data: bytes, identity: PersonaIdentity) -> ParsedExport:
    """Messages of a JSONL export, in file order; blank lines are skipped.

    `sender` and `text` are required strings; `timestamp` (ISO 8601 or epoch seconds) and
    `thread` (default "default") are optional and may be null. Anything else on a line is an
    ExportFormatError naming the line and the field.
    """
    messages: list[Message] = []
    participants: list[str] = []
    for number, line in enumerate(split_lines(decode_utf8(data, "JSONL export")), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ExportFormatError(
                f"invalid JSON: {exc.msg} (column {exc.colno})", number
            ) from None
        if not isinstance(record, dict):
            raise ExportFormatError(f"expected a JSON object, got {_json_type(record)}", number)
        sender = _required_string(record, "sender", number)
        text = _required_string(record, "text", number)
        thread = _optional_string(record, "thread", number)
        if sender not in participants:
            participants.append(sender)
        messages.append(
            Message(
                sender=sender,
                text=text,
                timestamp=_timestamp(record.get("timestamp"), number),
                thread=thread or DEFAULT_THREAD,
                from_persona=identity.matches(sender),
            )
        )
    return ParsedExport(format="jsonl", messages=messages, participants=participants)
