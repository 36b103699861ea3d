"""Deterministic pseudonyms: HMAC-SHA256(secret, type + normalised original) picks each fake value.

The same person, email or phone maps to the same fake value in every message and every run of one
persona, another persona's secret gives other values, and no mapping table is stored. Fake values
come from reserved ranges (555-01xx phones, example.com, 192.0.2.0/24) or Faker's locale data.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib
import ipaddress
import re
import threading
from collections.abc import Sequence

import phonenumbers
from faker import Faker

from synth_pipelines.core.persona.pii_gazetteer import Gazetteer, fold, load_gazetteer
from synth_pipelines.core.persona.pii_names import NAME_WORD
from synth_pipelines.core.persona.pii_patterns import (
    FALLBACK_REGIONS,
    find_addresses,
    parse_phone_number,
)
from synth_pipelines.core.persona.pii_wordlists import PARTICLES, ROLE_MAILBOXES

_AREA_CODES = ("201", "212", "213", "303", "312", "415", "503", "617", "646", "702", "718", "917")
_EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net")
_DOC_NETS_V4 = ("192.0.2.", "198.51.100.", "203.0.113.")
_faker_lock = threading.Lock()
_CITY_TRIES = 16  # draws until the whole line reads back as one address


@functools.cache
def _faker(locale: str) -> Faker:
    return Faker(locale)


@functools.cache
def _city_list(locale: str) -> tuple[str, ...]:
    """The locale's own list of real city names, sorted; empty where Faker composes cities from
    formats. Faker's it_IT list is built from a set, so its order (and a seeded `fake.city()`)
    changes with PYTHONHASHSEED: picking from a sorted copy keeps pseudonyms the same in every
    process."""
    provider = importlib.import_module(f"faker.providers.address.{locale}").Provider
    cities = getattr(provider, "cities", ())
    return tuple(sorted(set(cities))) if isinstance(cities, list | tuple) else ()


def normalise(pii_type: str, original: str, region: str = "US") -> str:
    """The key a pseudonym is derived from: formatting differences do not change it."""
    text = original.strip()
    if pii_type == "email":
        if "@" not in text:  # spelled out: "sam dot torres at gmail dot com"
            text = re.sub(r"\s*[\[({]?\s*\bdot\b\s*[\])}]?\s*", ".", text, flags=re.I)
            text = re.sub(r"\s*[\[({]?\s*\bat\b\s*[\])}]?\s*", "@", text, flags=re.I)
        return text.lower()
    if pii_type == "phone":
        number = _parse_phone(text, region)
        if number is None:
            return re.sub(r"\D", "", text)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if pii_type == "url":
        text = re.sub(r"(?i)^(?:https?://)?(?:www\.)?", "", text)
        return text.rstrip("/").lower()
    if pii_type == "ip":
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            return text.lower()
    if pii_type in ("card", "iban"):
        return re.sub(r"[\s-]", "", text).upper()
    return " ".join(fold(w) for w in NAME_WORD.findall(text))


class Pseudonyms:
    """Fake values for one persona. `avoid`: folded names never to produce (the persona's own
    contacts); `aliases`: nickname -> full name word ("dan" -> "daniel") so both map alike."""

    def __init__(
        self,
        secret: bytes,
        avoid: set[str],
        region: str = "US",
        aliases: dict[str, str] | None = None,
    ) -> None:
        self._secret = secret
        self._avoid = avoid
        self._region = region
        self._aliases = aliases or {}
        self._gaz: Gazetteer = load_gazetteer()

    def digest(self, pii_type: str, key: str) -> int:
        mac = hmac.new(self._secret, f"{pii_type}\x00{key}".encode(), hashlib.sha256)
        return int.from_bytes(mac.digest()[:8], "big")

    def _pick(self, pii_type: str, key: str, options: Sequence[str]) -> str:
        index = self.digest(pii_type, key) % len(options)
        for step in range(len(options)):
            choice = options[(index + step) % len(options)]
            folded = fold(choice)
            if folded != key and folded not in self._avoid:
                return choice
        return options[index]

    def _digits(self, pii_type: str, key: str, count: int) -> str:
        return str(self.digest(pii_type, key) % 10**count).zfill(count)

    # ---- names --------------------------------------------------------------------------------
    def name(self, original: str, after_title: bool = False) -> str:
        """Word by word, so "Priya" alone and in "Priya Raman" map alike; particles dropped;
        first-only stays first-only, lower-case stays lower-case. After "Dr."/"Mr" a lone word
        is a surname."""
        words = [w for w in NAME_WORD.findall(original) if fold(w) not in PARTICLES] or [original]
        out = []
        for j, word in enumerate(words):
            if j > 0 or (after_title and len(words) == 1):
                role = "last"
            else:
                role = "first" if len(words) > 1 else None
            out.append(self.name_token(word, role))
        return " ".join(out)

    def name_token(self, word: str, role: str | None = None) -> str:
        """One name word, replaced by a name of the same role (first/last), locale and gender
        where the gazetteer knows them; a nickname of a known name maps like the full name."""
        key = fold(word)
        key = self._aliases.get(key, key)
        entries = self._gaz.entries.get(key, ())
        entry = next((e for e in entries if e.role == role), entries[0] if entries else None)
        if entry is None:
            pool = self._gaz.pool("en_US", role or "first", None)
        else:
            locale = "en_US" if entry.locale == "en" else entry.locale
            pool = self._gaz.pool(locale, entry.role, entry.gender)
        choice = self._pick("name", key, pool)
        if word.islower():
            return choice.lower()
        if word.isupper() and len(word) > 1:
            return choice.upper()
        return choice

    # ---- contact details ----------------------------------------------------------------------
    def email(self, original: str) -> str:
        """Name words in the local part map like the names ("priya.raman88" -> "ellen.fowler31"),
        role words (info, support) stay, the domain becomes example.com/.org/.net."""
        key = normalise("email", original)
        local, _, domain = key.rpartition("@")
        out = []
        words = 0
        for part in re.split(r"([._+-]|\d+)", local):
            if not part or part in "._+-":
                out.append(part)
            elif part.isdigit():
                out.append(self._digits("email-digits", f"{key}:{part}", len(part)))
            elif part in ROLE_MAILBOXES:
                out.append(part)
            elif len(part) == 1:
                out.append("abcdefghijklmnopqrstuvwxyz"[self.digest("email-initial", part) % 26])
            else:
                out.append(fold(self.name_token(part, "last" if words else None)))
                words += 1
        fake = "".join(out) + "@" + self._pick("email-domain", domain, _EXAMPLE_DOMAINS)
        return fake if fake != key else "user." + fake

    def phone(self, original: str) -> str:
        """Same separators and digit count; NANP, UK, French and Australian numbers land in their
        ranges reserved for fiction (555-01xx, 07700 900xxx, 01 99 00 xx xx, 0491 570 xxx)."""
        key = normalise("phone", original, self._region)
        digits = re.sub(r"\D", "", original)
        number = _parse_phone(original, self._region)
        if number is None:
            nsn, cc = digits[-7:], 0
        else:
            nsn, cc = phonenumbers.national_significant_number(number), number.country_code
        if not digits.endswith(nsn) or len(nsn) < 4:
            nsn = digits[2:] if len(digits) > 4 else digits
        fake_nsn = self._fake_nsn(key, cc, nsn)
        fake_digits = digits[: len(digits) - len(nsn)] + fake_nsn
        if fake_digits == digits:
            fake_digits = digits[:-1] + str((int(digits[-1]) + 1) % 10)
        it = iter(fake_digits)
        return "".join(next(it) if c.isdigit() else c for c in original)

    def _fake_nsn(self, key: str, cc: int, nsn: str) -> str:
        n = len(nsn)
        if cc == 1 and n == 10:
            area = self._pick("phone-area", key, _AREA_CODES)
            return area + "55501" + self._digits("phone", key, 2)
        if cc == 1 and n == 7:
            return "55501" + self._digits("phone", key, 2)
        if cc == 44 and n == 10:
            prefix = "7700900" if nsn.startswith("7") else "2079460"
            return prefix + self._digits("phone", key, 3)
        if cc == 33 and n == 9:
            prefix = "63998" if nsn[0] in "67" else "19900"
            return prefix + self._digits("phone", key, 4)
        if cc == 61 and n == 9 and nsn.startswith("4"):
            return "491570" + self._digits("phone", key, 3)
        keep = min(2, n - 1)  # elsewhere: the carrier/area prefix stays, the rest is hashed
        return nsn[:keep] + self._digits("phone", key, n - keep)

    def url(self, original: str) -> str:
        key = normalise("url", original)
        domain = self._pick("url-domain", key.split("/")[0], _EXAMPLE_DOMAINS)
        scheme = re.match(r"(?i)^(?:https?://)?(?:www\.)?", original).group()
        path = f"/{self.digest('url', key):016x}"[:9] if "/" in key else ""
        return f"{scheme}{domain}{path}"

    def ip(self, original: str) -> str:
        key = normalise("ip", original)
        h = self.digest("ip", key)
        if ":" in key:
            fake = f"2001:db8::{h >> 16 & 0xFFFF:x}:{h & 0xFFFF:x}"
        else:
            fake = f"{_DOC_NETS_V4[h % 3]}{1 + (h >> 8) % 254}"
        return fake if fake != key else fake[:-1] + ("1" if fake[-1] != "1" else "2")

    def card(self, original: str) -> str:
        """Masked like a receipt: "XXXX XXXX XXXX 4821", the last four hashed, not the real ones."""
        key = normalise("card", original)
        tail = iter(self._digits("card", key, 4))
        total = sum(c.isdigit() for c in original)
        seen = 0
        out = []
        for c in original:
            if c.isdigit():
                seen += 1
                out.append(next(tail) if seen > total - 4 else "X")
            else:
                out.append(c)
        return "".join(out)

    def iban(self, original: str) -> str:
        """Country code kept, the rest masked but for four hashed digits: "DEXX XXXX ... 1234"."""
        key = normalise("iban", original)
        tail = iter(self._digits("iban", key, 4))
        total = sum(c.isalnum() for c in original)
        seen = 0
        out = []
        for c in original:
            if c.isalnum():
                seen += 1
                if seen <= 2:
                    out.append(c)
                else:
                    out.append(next(tail) if seen > total - 4 else "X")
            else:
                out.append(c)
        return "".join(out)

    def address(self, original: str) -> str:
        """A street address from Faker's locale data, in the original's national form, with a
        city (and postcode) when the original had them."""
        key = normalise("address", original)
        locale = _address_locale(original)
        street = self._pick("address-street", key, self._gaz.pool(locale, "last", None))
        number = str(1 + self.digest("address-number", key) % 240)
        suffix = self._pick("address-suffix", key, ("Street", "Avenue", "Road", "Lane", "Drive"))
        line = {
            "de_DE": f"{street}straße {number}",
            "nl_NL": f"{street}straat {number}",
            "fr_FR": f"{number} rue {street}",
            "es_ES": f"Calle {street} {number}",
            "it_IT": f"Via {street} {number}",
        }.get(locale, f"{number} {street} {suffix}")
        if "," in original:
            line = self._with_city(line, key, locale, postcode=bool(re.search(r",.*\d", original)))
        if normalise("address", line) == key:  # drawn the original itself: move one door on
            line = line.replace(number, str(int(number) + 1), 1)
        return line

    def _with_city(self, line: str, key: str, locale: str, postcode: bool) -> str:
        """`line`, a city and maybe a postcode, in the locale's order. A city that would not read
        back as part of the address ("Via Scotto 106, St. Peter in Ahrn": the address ends at
        "St", "Peter" reads as a name) is drawn again: a pseudonym never adds PII."""
        cities = _city_list(locale)
        candidate = line
        with _faker_lock:
            fake = _faker(locale)
            for attempt in range(_CITY_TRIES):
                seed = self.digest("address-city", key if attempt == 0 else f"{key}\x00{attempt}")
                fake.seed_instance(seed)
                city = cities[seed % len(cities)] if cities else fake.city()
                if not postcode:
                    candidate = f"{line}, {city}"
                elif locale in ("en_GB", "en_US"):  # "London NW1 6XE", "Springfield 62701"
                    candidate = f"{line}, {city} {fake.postcode()}"
                else:  # the continental form: "10115 Berlin", "1015 CX Amsterdam"
                    candidate = f"{line}, {fake.postcode()} {city}"
                found = find_addresses(candidate)
                if len(found) == 1 and (found[0].start, found[0].end) == (0, len(candidate)):
                    break
        return candidate


def _parse_phone(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    """The number as written: read in the persona's `region` when it fits there (or carries its
    country code), else in the first fallback region where it is valid."""
    own = parse_phone_number(text, region)
    if own is not None and (
        text.lstrip().startswith("+")
        or phonenumbers.is_valid_number(own)
        or phonenumbers.is_possible_number(own)
    ):
        return own
    for other in FALLBACK_REGIONS:
        number = parse_phone_number(text, other)
        if other != region and number is not None and phonenumbers.is_valid_number(number):
            return number
    return own


def _address_locale(original: str) -> str:
    lowered = original.lower()
    if re.search(r"(straße|strasse|str\.|weg|gasse|platz|allee)\s+\d", lowered):
        return "de_DE"
    if re.search(r"(gracht|straat|laan|plein|kade)\s+\d", lowered):
        return "nl_NL"
    if re.search(r"\b(rue|chemin|allée|impasse|quai|boulevard|bd)\b", lowered) or re.search(
        r"^\d+\s+avenue\s+[a-z]", lowered
    ):
        return "fr_FR"
    if re.match(r"(calle|avenida|avda|plaza|paseo|carrer)\b", lowered):
        return "es_ES"
    if re.match(r"(via|viale|piazza|corso|largo)\b", lowered):
        return "it_IT"
    if re.search(r"\b[a-z]{1,2}\d[a-z\d]?\s?\d[a-z]{2}\b", lowered) or lowered.startswith("flat"):
        return "en_GB"
    return "en_US"
