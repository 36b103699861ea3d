"""mbox mail archives (Thunderbird, Google Takeout, Apple Mail): one message per plain-text body,
without quoted replies, their "On … wrote:" attribution or the signature."""

from __future__ import annotations

import email
import mailbox
import re
import tempfile
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from synth_pipelines.core.persona.messages import ExportFormatError, Message, ParsedExport
from synth_pipelines.core.persona.parsers_identity import PersonaIdentity

_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_ORIGINAL_MESSAGE = re.compile(r"^\s*-{2,}\s*(?:original message|forwarded message)\s*-{2,}", re.I)
_SURROGATE = re.compile("[\udc80-\udcff]")


def thread_subject(subject: str) -> str:
    """`subject` without Re:/Fwd: prefixes (any number, any case) and with single spaces."""
    return " ".join(_REPLY_PREFIX.sub("", subject).split()) or "(no subject)"


def _drop_attribution(lines: list[str]) -> None:
    """Remove trailing blank lines and an "On … wrote:" line (wrapped over two lines or not)."""
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not lines[-1].rstrip().endswith("wrote:"):
        return
    if lines[-1].lstrip().startswith("On "):
        lines.pop()
    elif len(lines) >= 2 and lines[-2].lstrip().startswith("On "):
        del lines[-2:]


def reply_text(body: str) -> str:
    """The author's own words of a mail body: quoted lines (">"), the attribution line before
    them, a forwarded/original message and everything after a "-- " signature separator go."""
    kept: list[str] = []
    for line in body.replace("\r\n", "\n").split("\n"):
        if line.rstrip() == "--" or _ORIGINAL_MESSAGE.match(line):
            break
        if line.lstrip().startswith(">"):
            _drop_attribution(kept)
            continue
        kept.append(line)
    return "\n".join(kept).strip()


class _MboxReader:
    def __init__(self, identity: PersonaIdentity) -> None:
        self.identity = identity
        self.messages: list[Message] = []
        self.participants: list[str] = []
        self.thread_of_id: dict[str, str] = {}

    def header(self, msg: EmailMessage, name: str, line: int) -> str:
        """Header `name` decoded (RFC 2047 or raw UTF-8); raw bytes in another charset are an
        ExportFormatError naming the header's line."""
        header_line = line + 1
        for key, raw in msg.raw_items():
            if key.lower() == name.lower() and _SURROGATE.search(raw):
                try:
                    raw.encode("ascii", "surrogateescape").decode("utf-8")
                except UnicodeDecodeError:
                    raise ExportFormatError(
                        f"{key} header is not valid UTF-8 and declares no charset "
                        "(expected RFC 2047 encoded words)",
                        header_line,
                    ) from None
            header_line += 1 + raw.count("\n")
        return str(msg.get(name, ""))

    def body(self, msg: EmailMessage, line: int) -> str:
        texts = []
        for part in msg.walk():
            if part.get_content_type() != "text/plain" or part.is_attachment():
                continue
            payload = part.get_payload(decode=True) or b""
            charset = part.get_content_charset() or "utf-8"
            try:
                texts.append(payload.decode(charset))
            except LookupError:
                raise ExportFormatError(
                    f"message starting here has a text part in unknown charset {charset!r}", line
                ) from None
            except UnicodeDecodeError:
                raise ExportFormatError(
                    f"message starting here has a text part that is not valid {charset}", line
                ) from None
        return "\n".join(reply_text(text) for text in texts)

    def thread(self, msg: EmailMessage, subject: str, line: int) -> str:
        references = _MESSAGE_ID.findall(self.header(msg, "References", line))
        in_reply_to = _MESSAGE_ID.findall(self.header(msg, "In-Reply-To", line))
        for known in references[:1] + in_reply_to[:1] + references[1:]:
            if known in self.thread_of_id:
                thread = self.thread_of_id[known]
                break
        else:
            thread = thread_subject(subject)
        for own in _MESSAGE_ID.findall(self.header(msg, "Message-ID", line))[:1]:
            self.thread_of_id[own] = thread
        return thread

    def add(self, msg: EmailMessage, line: int) -> None:
        sender_header = self.header(msg, "From", line)
        for field_name in ("From", "To", "Cc"):
            for name, _address in getaddresses([self.header(msg, field_name, line)]):
                if name and name not in self.participants:
                    self.participants.append(name)
        senders = getaddresses([sender_header])
        name, address = senders[0] if senders else ("", "")
        subject = self.header(msg, "Subject", line)
        self.messages.append(
            Message(
                sender=name or address or "(no sender)",
                text=self.body(msg, line),
                timestamp=_date(self.header(msg, "Date", line)),
                thread=self.thread(msg, subject, line),
                from_persona=self.identity.matches(sender_header),
            )
        )


def _date(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError):
        return None


def _separator_lines(data: bytes) -> list[int]:
    # The rule mailbox.mbox uses to split: every line that starts with "From ".
    return [n for n, line in enumerate(data.split(b"\n"), start=1) if line.startswith(b"From ")]


def parse_mbox(data: bytes, identity: PersonaIdentity) -> ParsedExport:
    """Messages of an mbox file, in file order; the persona's are those whose From matches a
    self id. Thread = the thread of the References root when it is in the file, else the
    subject without Re:/Fwd:. Only text/plain parts are read; HTML-only mails come out empty."""
    if not data.startswith(b"From "):
        raise ExportFormatError("not an mbox file: it must start with a 'From ' separator line", 1)
    reader = _MboxReader(identity)
    with tempfile.TemporaryDirectory(prefix="persona-mbox-") as tmp:
        path = Path(tmp) / "export.mbox"
        path.write_bytes(data)
        box = mailbox.mbox(path, create=False)
        try:
            for key, line in zip(box.iterkeys(), _separator_lines(data), strict=True):
                msg = email.message_from_bytes(box.get_bytes(key), policy=policy.default)
                reader.add(msg, line)
        finally:
            box.close()
    return ParsedExport(format="mbox", messages=reader.messages, participants=reader.participants)
