"""Chat and mail exports in, persona messages and (context, reply) training pairs out.

`parse_export` reads one export in any of `EXPORT_FORMATS`; `conversation_pairs` turns its
messages into the persona's replies with the turns that led to them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from synth_pipelines.core.persona.messages import (
    EXPORT_FORMATS,
    ExportFormatError,
    Message,
    ParsedExport,
)
from synth_pipelines.core.persona.parsers_identity import PersonaIdentity
from synth_pipelines.core.persona.parsers_jsonl import parse_jsonl
from synth_pipelines.core.persona.parsers_mbox import parse_mbox
from synth_pipelines.core.persona.parsers_sms_xml import parse_sms_xml
from synth_pipelines.core.persona.parsers_whatsapp import parse_whatsapp

_PARSERS: dict[str, Callable[[bytes, PersonaIdentity], ParsedExport]] = {
    "whatsapp": parse_whatsapp,
    "sms_xml": parse_sms_xml,
    "mbox": parse_mbox,
    "jsonl": parse_jsonl,
}

# Persona messages sent this close together are one reply typed as several bubbles.
DEFAULT_MERGE_GAP = timedelta(minutes=5)


def _epoch(timestamp: datetime) -> float:
    # Naive times (WhatsApp's local clock) are read as UTC: only their order matters here.
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    return timestamp.timestamp()


def _in_thread_order(messages: list[Message]) -> list[Message]:
    """Threads in order of first appearance; within one, a stable sort by timestamp where a
    message without one keeps following the message before it in the file."""
    threads: dict[str, list[Message]] = {}
    for message in messages:
        threads.setdefault(message.thread, []).append(message)
    ordered: list[Message] = []
    for thread_messages in threads.values():
        keys, last = [], -math.inf
        for message in thread_messages:
            if message.timestamp is not None:
                last = _epoch(message.timestamp)
            keys.append(last)
        order = sorted(range(len(thread_messages)), key=lambda i: (keys[i], i))
        ordered.extend(thread_messages[i] for i in order)
    return ordered


def parse_export(data: bytes, fmt: str, self_ids: Iterable[str]) -> ParsedExport:
    """Parse the bytes of one export of format `fmt` (one of EXPORT_FORMATS).

    `self_ids` are the persona's names, phone numbers and email addresses; matching messages
    get `from_persona=True`. Returns the messages with surrounding whitespace stripped and
    empty ones dropped, grouped by thread (in order of first appearance) and sorted by
    timestamp within each, plus the participant names the export itself names.

    Raises ExportFormatError (with the 1-based line where there is one) for an unknown
    format, a malformed file, text that is not valid UTF-8 or an export without messages.
    An export in which no message is the persona's is returned as is: callers that need
    persona messages must check `any(m.from_persona for m in result.messages)`.
    """
    if fmt not in _PARSERS:
        raise ExportFormatError(f"export format {fmt!r} is not one of: {', '.join(EXPORT_FORMATS)}")
    identity = PersonaIdentity(self_ids)
    parsed = _PARSERS[fmt](data, identity)
    messages = [replace(m, text=m.text.strip()) for m in parsed.messages]
    messages = [m for m in messages if m.text]
    if not messages:
        raise ExportFormatError(
            f"no messages found in this {fmt} export (nothing but blank, system or media "
            "lines); check that the file and the format match"
        )
    return ParsedExport(
        format=fmt, messages=_in_thread_order(messages), participants=parsed.participants
    )


@dataclass(frozen=True)
class ConversationPair:
    """One persona reply (`target`) and the turns before it in its thread (`context`,
    oldest first)."""

    context: tuple[Message, ...]
    target: Message

    @property
    def target_text(self) -> str:
        """The persona's reply text."""
        return self.target.text

    def prompt_text(self) -> str:
        """The context as "sender: text" lines, oldest first ("" without context)."""
        return "\n".join(f"{m.sender}: {m.text}" for m in self.context)


def _close_enough(earlier: Message, later: Message, gap: timedelta) -> bool:
    if earlier.timestamp is None or later.timestamp is None:
        return True  # nothing says they were apart: one burst, as the file has them
    return _epoch(later.timestamp) - _epoch(earlier.timestamp) <= gap.total_seconds()


def _turns(thread_messages: list[Message], merge_gap: timedelta) -> list[Message]:
    """The thread's messages with each run of persona messages within `merge_gap` of each
    other merged into one (texts joined by newlines, timestamp of the first)."""
    turns: list[Message] = []
    run_last: Message | None = None  # last persona message of the run `turns[-1]` holds
    for message in thread_messages:
        if (
            message.from_persona
            and run_last is not None
            and _close_enough(run_last, message, merge_gap)
        ):
            turns[-1] = replace(turns[-1], text=f"{turns[-1].text}\n{message.text}")
        else:
            turns.append(message)
        run_last = message if message.from_persona else None
    return turns


def conversation_pairs(
    messages: Sequence[Message],
    context_turns: int = 4,
    *,
    merge_gap: timedelta = DEFAULT_MERGE_GAP,
) -> list[ConversationPair]:
    """Training pairs from ordered `messages` (as `parse_export` returns them).

    Per thread (threads in order of first appearance), every persona turn is a target:
    consecutive persona messages at most `merge_gap` apart (or without timestamps) become one
    turn. Its context is up to `context_turns` preceding turns of the same thread, any sender,
    earlier persona turns included; a target with nothing before it gets an empty context.
    """
    if context_turns < 0:
        raise ValueError(f"context_turns must be 0 or more, got {context_turns}")
    threads: dict[str, list[Message]] = {}
    for message in messages:
        threads.setdefault(message.thread, []).append(message)
    pairs: list[ConversationPair] = []
    for thread_messages in threads.values():
        turns = _turns(thread_messages, merge_gap)
        for index, turn in enumerate(turns):
            if turn.from_persona:
                start = max(0, index - context_turns)
                pairs.append(ConversationPair(context=tuple(turns[start:index]), target=turn))
    return pairs
