"""WhatsApp "Export chat" .txt files, iOS (`[date, time] Name: text`) and Android
(`date, time - Name: text`) styles, 24-hour or 12-hour clocks, any day/month order."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from synth_pipelines.core.persona.messages import ExportFormatError, Message, ParsedExport
from synth_pipelines.core.persona.parsers_encoding import decode_utf8, split_lines
from synth_pipelines.core.persona.parsers_identity import (
    DIRECTION_MARKS,
    PersonaIdentity,
    strip_marks,
)

THREAD = "whatsapp"

_SPACE = "[ \u00a0\u202f]"  # phones write a (narrow) no-break space before AM/PM
_DATE = r"(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4})"
_TIME = (
    rf"(?P<time>\d{{1,2}}:\d{{2}}(?::\d{{2}})?)(?:{_SPACE}?(?P<ampm>[AaPp]\.?{_SPACE}?[Mm]\.?))?"
)
_BRACKET_HEADER = re.compile(rf"^\[{_DATE},?{_SPACE}{_TIME}\]{_SPACE}?(?P<rest>.*)$")
_DASH_HEADER = re.compile(rf"^{_DATE},?{_SPACE}{_TIME}{_SPACE}[-\u2013]{_SPACE}(?P<rest>.*)$")
_SENDER = re.compile(r"^(?P<sender>[^:]+?):(?: (?P<text>.*))?$")
# System lines whose own text holds ": " (a group named "Trip: Rome") look like "Name: text".
_SYSTEM_SENDER = re.compile(
    r" (?:created group|changed the subject|changed the group|changed this group|"
    r"changed their phone number|changed the settings) "
)
_MEDIA_LINE = re.compile(
    r"^(?:<media omitted>|(?:.*\s)?(?:image|video|audio|sticker|gif|document|contact card) "
    r"omitted|<attached: .+>|.+ \(file attached\)|this message was deleted\.?|"
    r"you deleted this message\.?|missed (?:voice|video) call|null)$"
)
_EDITED_SUFFIX = re.compile(r"\s*\u200e?<this message was edited>$", re.IGNORECASE)


@dataclass
class _Entry:
    line: int
    match: re.Match[str]
    sender: str | None = None
    lines: list[str] = field(default_factory=list)
    # iOS marks its own annotations (media, deletions, group events) with a leading U+200E.
    annotated: bool = False


def _is_media_line(line: str) -> bool:
    return _MEDIA_LINE.match(strip_marks(line).casefold()) is not None


def _match_header(line: str) -> re.Match[str] | None:
    line = line.lstrip(DIRECTION_MARKS)
    return _BRACKET_HEADER.match(line) or _DASH_HEADER.match(line)


def _date_fields(match: re.Match[str]) -> list[int]:
    return [int(part) for part in re.split(r"[./-]", match["date"])]


def _infer_day_first(entries: list[_Entry]) -> bool:
    """Day-first when some first field exceeds 12, month-first when some second one does;
    otherwise month-first for 12-hour clocks (US style) and day-first for 24-hour ones."""
    # Year-first dates (2024-03-12) say nothing about the order of the other two.
    fields = [f for f in (_date_fields(e.match) for e in entries) if f[0] < 100]
    if any(f[0] > 12 for f in fields):
        return True
    if any(f[1] > 12 for f in fields):
        return False
    return not any(e.match["ampm"] for e in entries)


def _timestamp(entry: _Entry, day_first: bool) -> datetime:
    first, second, third = _date_fields(entry.match)
    if first >= 100:
        year, month, day = first, second, third
        order = "year/month/day"
    elif day_first:
        day, month, year = first, second, third
        order = "day/month/year"
    else:
        month, day, year = first, second, third
        order = "month/day/year"
    if year < 100:
        year += 2000
    hour, minute, *rest = (int(part) for part in entry.match["time"].split(":"))
    second_of_minute = rest[0] if rest else 0
    ampm = entry.match["ampm"]
    if ampm:
        if not 1 <= hour <= 12:
            raise ExportFormatError(
                f"12-hour time '{entry.match['time']}' is not valid", entry.line
            )
        is_pm = ampm.lower().startswith("p")
        hour = hour % 12 + (12 if is_pm else 0)
    try:
        return datetime(year, month, day, hour, minute, second_of_minute)
    except ValueError as exc:
        raise ExportFormatError(
            f"'{entry.match['date']} {entry.match['time']}' is not a valid {order} date and time "
            f"({exc}); every line of one export must use the same date order",
            entry.line,
        ) from None


def _text_of(entry: _Entry) -> str:
    # Media placeholders stand on the first line; a caption may follow on the next ones.
    lines = entry.lines[1:] if _is_media_line(entry.lines[0]) else entry.lines
    text = "\n".join(lines).strip().strip(DIRECTION_MARKS)
    return _EDITED_SUFFIX.sub("", text).strip()


def parse_whatsapp(data: bytes, identity: PersonaIdentity) -> ParsedExport:
    """Messages of a WhatsApp chat export, in file order, thread "whatsapp".

    Continuation lines join the message above; system lines (no sender), media placeholders
    and deleted-message notes are skipped. A non-blank line before the first message line is
    an ExportFormatError naming that line.
    """
    lines = split_lines(decode_utf8(data, "WhatsApp export"))
    entries: list[_Entry] = []
    for number, line in enumerate(lines, start=1):
        match = _match_header(line)
        if match is not None:
            entries.append(_Entry(number, match))
            _read_sender(entries[-1])
        elif entries:
            entries[-1].lines.append(line)
        elif strip_marks(line):
            raise ExportFormatError(
                "expected a WhatsApp message line such as '12/03/2024, 14:05 - Name: text' or "
                f"'[12/03/2024, 14:05:31] Name: text', found {line[:60]!r}",
                number,
            )

    day_first = _infer_day_first(entries)
    messages: list[Message] = []
    participants: list[str] = []
    for entry in entries:
        timestamp = _timestamp(entry, day_first)
        if entry.sender is None:
            continue
        if entry.annotated and not _is_media_line(entry.lines[0]):
            continue  # an iOS group event, attributed to the group's name
        if entry.sender not in participants:
            participants.append(entry.sender)
        messages.append(
            Message(
                sender=entry.sender,
                text=_text_of(entry),
                timestamp=timestamp,
                thread=THREAD,
                from_persona=identity.matches(entry.sender),
            )
        )
    return ParsedExport(format="whatsapp", messages=messages, participants=participants)


def _read_sender(entry: _Entry) -> None:
    rest = entry.match["rest"]
    found = _SENDER.match(rest)
    if found is None or _SYSTEM_SENDER.search(found["sender"]):
        return  # "Alice added Bob", "Messages and calls are end-to-end encrypted…"
    entry.sender = strip_marks(found["sender"])
    text = found["text"] or ""
    entry.annotated = text.startswith("\u200e")
    entry.lines.append(text)
