"""Android "SMS Backup & Restore" XML: `<smses>` holding `<sms>` and `<mms>` elements.

Parsed with expat (the parser under `xml.etree.ElementTree`) as a stream, so a backup full of
base64 MMS images is never held as a tree and every error can name its line. Documents with a
DOCTYPE or ENTITY declaration are refused before any entity can expand (billion laughs, XXE).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.parsers import expat

from synth_pipelines.core.persona.messages import ExportFormatError, Message, ParsedExport
from synth_pipelines.core.persona.parsers_identity import PersonaIdentity, phone_digits

# type (sms) and msg_box (mms): 1 received, 2 sent; drafts, outbox, failed and queued
# messages were never delivered and are left out.
_RECEIVED, _SENT = "1", "2"
# <addr type="137"> is an MMS's sender (PduHeaders.FROM).
_MMS_FROM = "137"
_NO_CONTACT = {"", "(unknown)", "null"}
# Old app versions write emoji as surrogate-pair character references, which expat rejects.
_SURROGATE_PAIR = re.compile(rb"&#(5[5-7]\d{3});&#(5[6-7]\d{3});")
_LONE_SURROGATE = re.compile(rb"&#(5[5-7]\d{3});")


def _join_surrogate_refs(data: bytes) -> bytes:
    def pair(match: re.Match[bytes]) -> bytes:
        high, low = int(match[1]), int(match[2])
        if 0xD800 <= high <= 0xDBFF and 0xDC00 <= low <= 0xDFFF:
            code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            return b"&#%d;" % code
        return match[0]

    def lone(match: re.Match[bytes]) -> bytes:
        return b"&#65533;" if 0xD800 <= int(match[1]) <= 0xDFFF else match[0]

    return _LONE_SURROGATE.sub(lone, _SURROGATE_PAIR.sub(pair, data))


def normalise_address(address: str) -> str:
    """A phone number as "+digits"/"digits"; group MMS addresses ("a~b") sorted and rejoined;
    alphanumeric sender ids (short codes, "AMAZON") lowercased."""
    parts = []
    for part in address.split("~"):
        part = part.strip()
        digits = phone_digits(part)
        if digits is None:
            parts.append(part.casefold())
        else:
            parts.append(("+" if part.startswith("+") else "") + digits)
    return "~".join(sorted(parts))


def _contact(name: str | None) -> str | None:
    name = (name or "").strip()
    return None if name.casefold() in _NO_CONTACT else name


@dataclass
class _Mms:
    line: int
    attrs: dict[str, str]
    texts: list[str] = field(default_factory=list)
    senders: list[str] = field(default_factory=list)


class _SmsBackupReader:
    def __init__(self, identity: PersonaIdentity) -> None:
        self.me = identity.display_name or "me"
        self.messages: list[Message] = []
        self.participants: list[str] = []
        self.parser = expat.ParserCreate()
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.StartDoctypeDeclHandler = self._refuse_doctype
        self.parser.EntityDeclHandler = self._refuse_entity
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.depth = 0
        self.mms: _Mms | None = None

    @property
    def line(self) -> int:
        return self.parser.CurrentLineNumber

    def _refuse_doctype(self, *_args: object) -> None:
        raise ExportFormatError(
            "DOCTYPE declarations are not allowed in an SMS backup (entity expansion risk)",
            self.line,
        )

    def _refuse_entity(self, name: str, *_args: object) -> None:
        raise ExportFormatError(
            f"ENTITY declaration '{name}' is not allowed in an SMS backup", self.line
        )

    def _start(self, tag: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        if self.depth == 1 and tag != "smses":
            raise ExportFormatError(
                f"expected an SMS Backup & Restore export with an <smses> root, found <{tag}>",
                self.line,
            )
        if self.depth == 2 and tag == "sms":
            self._add_sms(attrs)
        elif self.depth == 2 and tag == "mms":
            self.mms = _Mms(self.line, attrs)
        elif self.mms is not None and tag == "part" and attrs.get("ct") == "text/plain":
            self.mms.texts.append(attrs.get("text", ""))
        elif self.mms is not None and tag == "addr" and attrs.get("type") == _MMS_FROM:
            self.mms.senders.append(attrs.get("address", ""))

    def _end(self, tag: str) -> None:
        self.depth -= 1
        if self.depth == 1 and tag == "mms" and self.mms is not None:
            self._add_mms(self.mms)
            self.mms = None

    def _timestamp(self, attrs: dict[str, str], tag: str, line: int) -> datetime:
        raw = attrs.get("date", "")
        try:
            return datetime.fromtimestamp(int(raw) / 1000, tz=UTC)
        except (ValueError, OverflowError, OSError):
            raise ExportFormatError(
                f"<{tag}> date {raw!r} is not a time in epoch milliseconds", line
            ) from None

    def _note_contact(self, name: str | None) -> None:
        if name is not None and name not in self.participants:
            self.participants.append(name)

    def _add(self, *, sender: str, text: str, timestamp: datetime, thread: str, sent: bool):
        self.messages.append(
            Message(
                sender=sender,
                text=text,
                timestamp=timestamp,
                thread=thread,
                from_persona=sent,
            )
        )

    def _add_sms(self, attrs: dict[str, str]) -> None:
        kind = attrs.get("type")
        timestamp = self._timestamp(attrs, "sms", self.line)
        address = attrs.get("address", "")
        name = _contact(attrs.get("contact_name"))
        self._note_contact(name)
        if kind not in (_RECEIVED, _SENT):
            return
        self._add(
            sender=self.me if kind == _SENT else name or address.strip(),
            text=attrs.get("body", ""),
            timestamp=timestamp,
            thread=normalise_address(address),
            sent=kind == _SENT,
        )

    def _add_mms(self, mms: _Mms) -> None:
        box = mms.attrs.get("msg_box")
        timestamp = self._timestamp(mms.attrs, "mms", mms.line)
        address = mms.attrs.get("address", "")
        addresses = [a.strip() for a in address.split("~")]
        raw_names = mms.attrs.get("contact_name", "")
        # Group MMS list contacts in address order: "Bob, Carol" for "+1…~+1…".
        names = raw_names.split(", ") if len(addresses) > 1 else [raw_names]
        for name in names:
            self._note_contact(_contact(name))
        if box not in (_RECEIVED, _SENT):
            return
        sender = self.me
        if box == _RECEIVED:
            name_of = {}
            if len(names) == len(addresses):
                name_of = {normalise_address(a): n for a, n in zip(addresses, names, strict=True)}
            tokens = [a for a in mms.senders if a and a != "insert-address-token"]
            origin = tokens[0] if tokens else address.strip()
            sender = _contact(name_of.get(normalise_address(origin))) or origin
        self._add(
            sender=sender,
            text="\n".join(t for t in mms.texts if t.strip()),
            timestamp=timestamp,
            thread=normalise_address(address),
            sent=box == _SENT,
        )

    def read(self, data: bytes) -> ParsedExport:
        try:
            self.parser.Parse(_join_surrogate_refs(data), True)
        except expat.ExpatError as exc:
            raise ExportFormatError(
                f"malformed XML: {expat.ErrorString(exc.code)} (column {exc.offset + 1})",
                exc.lineno,
            ) from None
        return ParsedExport(
            format="sms_xml", messages=self.messages, participants=self.participants
        )


def parse_sms_xml(data: bytes, identity: PersonaIdentity) -> ParsedExport:
    """Messages of an SMS Backup & Restore XML file, in file order, one thread per address.

    Sent messages (sms type 2, mms msg_box 2) are the persona's, with sender = the persona's
    display name (first name-like self id) or "me"; received ones carry the contact name, or
    the number when the contact is "(Unknown)". Only text/plain MMS parts are kept.
    """
    return _SmsBackupReader(identity).read(data)
