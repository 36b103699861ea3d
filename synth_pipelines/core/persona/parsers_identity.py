"""Who the persona is in an export: names, phone numbers and email addresses, matched leniently."""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.utils import getaddresses, parseaddr

# Invisible direction marks WhatsApp and phone apps wrap around names and numbers.
DIRECTION_MARKS = "\ufeff\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"

_NO_MARKS = dict.fromkeys(map(ord, DIRECTION_MARKS))
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]+$")
# Numbers this long are compared on their last digits so "+1 555…" and "555…" match.
_PHONE_SUFFIX_DIGITS = 9


def strip_marks(value: str) -> str:
    """`value` without direction marks at either end and without surrounding whitespace."""
    return value.strip().strip(DIRECTION_MARKS).strip()


def _name_key(value: str) -> str:
    return " ".join(strip_marks(value).casefold().split())


def phone_digits(value: str) -> str | None:
    """The digits of `value` when it looks like a phone number (at least 3 digits), else None."""
    value = strip_marks(value).translate(_NO_MARKS)
    if not _PHONE_LIKE.match(value):
        return None
    digits = re.sub(r"\D", "", value)
    return digits if len(digits) >= 3 else None


def _same_phone(a: str, b: str) -> bool:
    if a == b:
        return True
    n = _PHONE_SUFFIX_DIGITS
    return len(a) >= n and len(b) >= n and a[-n:] == b[-n:]


class PersonaIdentity:
    """The persona's identifiers; `matches` says whether a sender or address is the persona.

    Names compare case-insensitively; phone numbers by digits (the last 9 when both are that
    long, so country codes and trunk zeros don't matter); emails lowercase, including the
    address inside "Name <addr>" forms on either side.
    """

    def __init__(self, self_ids: Iterable[str]) -> None:
        if isinstance(self_ids, str | bytes):
            raise TypeError("self_ids must be a list of identifiers, not a single string")
        self.ids: list[str] = []
        self._names: set[str] = set()
        self._emails: set[str] = set()
        self._phones: list[str] = []
        for raw in self_ids:
            value = strip_marks(str(raw))
            if not value:
                continue
            self.ids.append(value)
            if "@" in value:
                name, address = parseaddr(value)
                if address:
                    self._emails.add(address.lower())
                if name:
                    self._names.add(_name_key(name))
                continue
            digits = phone_digits(value)
            if digits is not None:
                self._phones.append(digits)
            self._names.add(_name_key(value))

    @property
    def display_name(self) -> str | None:
        """The first identifier that is a name (not a number or address), else the first one."""
        for value in self.ids:
            if "@" not in value and phone_digits(value) is None:
                return value
        return self.ids[0] if self.ids else None

    def matches(self, value: str) -> bool:
        """Whether `value` (a name, phone number, address or "Name <addr>") is the persona."""
        if not value:
            return False
        if _name_key(value) in self._names:
            return True
        if "@" in value:
            for name, address in getaddresses([value]):
                if address.lower() in self._emails or (name and _name_key(name) in self._names):
                    return True
            return False
        digits = phone_digits(value)
        return digits is not None and any(_same_phone(digits, p) for p in self._phones)
