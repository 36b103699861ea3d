"""Pattern detectors for structured PII: emails, URLs, IPs, card numbers, IBANs, phones, addresses.

Each `find_*` function takes a text and returns `PiiSpan`s of one type; spans of different types
may overlap here (a URL holding an IP), `anonymize.Anonymizer.detect` resolves that by priority.
Cheap guards (an '@', a digit, enough digits) keep the expensive validators off most messages.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher
from stdnum import iban as stdnum_iban
from stdnum import luhn

PII_TYPES = ("name", "email", "phone", "url", "ip", "card", "iban", "address")


@dataclass(frozen=True)
class PiiSpan:
    """One PII occurrence: its type (one of `PII_TYPES`), character offsets and original text."""

    type: str
    start: int
    end: int
    text: str


# ---- emails -------------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![\w-])"
)
_AT_WORD = r"(?:\s*[\[({]\s*at\s*[\])}]\s*|\s+at\s+)"
_DOT_WORD = r"(?:\s*[\[({]\s*dot\s*[\])}]\s*|\s+dot\s+)"
# "name [at] host [dot] com" and "name dot last at host dot com": the at and at least one dot
# spelled out, so that "meet at home" never matches.
_EMAIL_SPELLED = re.compile(
    rf"(?i)(?<![\w.])[a-z0-9][\w+-]*(?:(?:{_DOT_WORD}|\.)[a-z0-9][\w+-]*)*{_AT_WORD}"
    rf"[a-z0-9][\w-]*(?:(?:{_DOT_WORD}|\.)[a-z0-9][\w-]*)*{_DOT_WORD}"
    r"(?:com|org|net|edu|gov|io|co|uk|de|fr|es|it|nl|in|ca|au|me|info|biz|app|dev)\b"
)


def find_emails(text: str) -> list[PiiSpan]:
    """Email addresses, including spelled-out forms like "sam dot torres at gmail dot com"."""
    spans = []
    if "@" in text:
        spans += [PiiSpan("email", m.start(), m.end(), m.group()) for m in _EMAIL.finditer(text)]
    lowered = text.lower()
    if "at" in lowered and "dot" in lowered:
        spans += [
            PiiSpan("email", m.start(), m.end(), m.group()) for m in _EMAIL_SPELLED.finditer(text)
        ]
    return spans


# ---- URLs ---------------------------------------------------------------------------------------
_TLDS = (
    "com|org|net|edu|gov|mil|int|io|co|uk|de|fr|es|nl|ru|jp|cn|br|au|ca|ch|se|dk|fi|pl|tr|eu|ie|"
    "nz|za|mx|ar|cl|pt|gr|cz|hu|ro|ua|kr|tw|hk|sg|ae|ng|ke|info|biz|app|dev|ai|ly|gl|gle|gg|tv|"
    "xyz|site|online|shop|blog|link|page|cloud|tech|store|news|live|club"
)
# Two-letter TLDs that are also English words: a bare "trust.me" is not a link, "zoom.us/j/1" is.
_WORD_TLDS = "me|us|in|it|to|so|at|be|is|my|no|do|go|am|an|as|by|he|hi|if|of|on|or|we"
_URL_SCHEMED = re.compile(r"(?i)(?<![\w@])(?:https?://|www\.)[^\s<>\"'`]+")
_URL_BARE = re.compile(
    r"(?i)(?<![\w@.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+"
    rf"(?:(?:{_TLDS})(?![\w-])(?:/[^\s<>\"'`]*)?|(?:{_WORD_TLDS})/[^\s<>\"'`]*)"
)
_URL_TRAILING = ".,;:!?'\")]}>"


def find_urls(text: str) -> list[PiiSpan]:
    """http(s) and www. links, and bare domains with a common TLD (and optional path)."""
    if "." not in text:
        return []
    spans = []
    for pattern in (_URL_SCHEMED, _URL_BARE):
        for m in pattern.finditer(text):
            url = m.group()
            while url and url[-1] in _URL_TRAILING:
                if url[-1] == ")" and url.count("(") > url.count(")") - 1:
                    break  # a balanced "(...)" belongs to the URL (wikipedia style)
                url = url[:-1]
            if "." in url and len(url) > 4:
                spans.append(PiiSpan("url", m.start(), m.start() + len(url), url))
    return spans


# ---- IP addresses -------------------------------------------------------------------------------
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


def find_ips(text: str) -> list[PiiSpan]:
    """IPv4 and IPv6 addresses that `ipaddress` accepts (so times like 12:30:45 are not)."""
    spans = []
    if "." in text:
        for m in _IPV4.finditer(text):
            try:
                ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            spans.append(PiiSpan("ip", m.start(), m.end(), m.group()))
    if "::" in text or text.count(":") >= 3:
        for m in _IPV6.finditer(text):
            candidate = m.group()
            if candidate.count(":") < 2 or not any(c.isalnum() for c in candidate):
                continue
            try:
                ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            spans.append(PiiSpan("ip", m.start(), m.end(), candidate))
    return spans


# ---- payment cards ------------------------------------------------------------------------------
_CARD = re.compile(r"(?<![\d.,-])\d(?:[ -]?\d){12,18}(?![\d])")


def find_cards(text: str) -> list[PiiSpan]:
    """13-19 digit numbers (spaces or dashes between groups) of a card network passing Luhn."""
    spans = []
    for m in _CARD.finditer(text):
        raw = m.group()
        digits = raw.replace(" ", "").replace("-", "")
        if digits[0] not in "23456" or not luhn.is_valid(digits):
            continue
        if not _card_grouping_ok(raw):
            continue
        spans.append(PiiSpan("card", m.start(), m.end(), raw))
    return spans


def _card_grouping_ok(raw: str) -> bool:
    """Cards are written ungrouped or in groups of 4-6 with one kind of separator."""
    separators = {c for c in raw if not c.isdigit()}
    if not separators:
        return True
    if len(separators) > 1:
        return False
    groups = raw.split(separators.pop())
    return all(3 <= len(g) <= 6 for g in groups[:-1]) and 1 <= len(groups[-1]) <= 6


# ---- IBANs --------------------------------------------------------------------------------------
_IBAN = re.compile(r"(?i)(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")


def find_ibans(text: str) -> list[PiiSpan]:
    """IBANs, grouped or not, any case, that pass the country length check and mod-97."""
    spans = []
    for m in _IBAN.finditer(text):
        raw = m.group()
        # The pattern may run into a following word ("... 32 ref"): trim back to a valid IBAN.
        positions = [i for i, c in enumerate(raw) if c != " "]
        compact = raw.replace(" ", "").upper()
        for length in range(len(compact), 14, -1):
            end = positions[length - 1] + 1
            if end < len(raw) and raw[end] != " ":
                continue  # would cut a group in half
            if stdnum_iban.is_valid(compact[:length]):
                spans.append(PiiSpan("iban", m.start(), m.start() + end, raw[:end]))
                break
    return spans


# ---- phone numbers ------------------------------------------------------------------------------
_PHONE_CANDIDATE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().\-/]{5,}\d(?!\d)")
_PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:call|ring|text|sms|phone|tel|mobile|cell|cellphone|handy|whatsapp|number|no\.|"
    r"fax|landline|reach|contact|dial|portable|numéro)\b"
)
# Where a persona's contacts often live: national formats of these are tried after the default.
FALLBACK_REGIONS = ("GB", "DE", "FR", "IN", "IT", "ES", "NL", "AU")


def find_phones(text: str, region: str) -> list[PiiSpan]:
    """Phone numbers: `phonenumbers.PhoneNumberMatcher` in `region` (international formats for any
    country), accepting valid numbers, and possible ones written internationally, with a trunk 0,
    or next to a word like "call"/"mobile". Then every digit run it left, trimmed group by group
    ("+44 7700 900123 88" holds a number): in `region`, or national numbers of a fallback region."""
    candidates = [
        m for m in _PHONE_CANDIDATE.finditer(text) if sum(c.isdigit() for c in m.group()) >= 7
    ]
    if not candidates:
        return []
    spans = []
    for match in PhoneNumberMatcher(text, region, leniency=Leniency.POSSIBLE):
        raw = match.raw_string
        valid = phonenumbers.is_valid_number(match.number)
        if valid or _plausible_phone(text, match.start, raw, region):
            spans.append(PiiSpan("phone", match.start, match.end, raw))
    for m in candidates:
        if not any(s.start < m.end() and m.start() < s.end for s in spans):
            span = _phone_within(text, m.start(), m.group(), region)
            if span is not None:
                spans.append(span)
    return spans


def _phone_within(text: str, offset: int, raw: str, region: str) -> PiiSpan | None:
    """The longest run of whole digit groups in `raw` that reads as a phone number."""
    # cut only at spaces: "978-0-306-40615-7" is one token, not a number with a prefix
    cuts = [i for i in range(1, len(raw)) if raw[i].isspace() and raw[i - 1].isdigit()]
    starts = [0] + [i + 1 for i in cuts]
    ends = [len(raw), *reversed(cuts)]
    pieces = sorted(
        ((a, b) for a in starts for b in ends if b - a >= 7), key=lambda ab: ab[0] - ab[1]
    )
    for a, b in pieces:
        piece = raw[a:b].strip(" -./")
        if sum(c.isdigit() for c in piece) < 7:
            continue
        start = offset + raw.index(piece, a)
        own = parse_phone_number(piece, region)
        # a trunk 0 alone does not make a possible number plausible here: "0-306-40615-7"
        plausible = piece.startswith(("+", "(")) or _phone_context(text, start)
        if own is not None and (
            phonenumbers.is_valid_number(own)
            or (phonenumbers.is_possible_number(own) and plausible)
        ):
            return PiiSpan("phone", start, start + len(piece), piece)
        # national (or 00-international) form of a fallback region; "0-306-..." is an ISBN
        if re.match(r"\(?0\d", piece):
            for other in FALLBACK_REGIONS:
                number = parse_phone_number(piece, other)
                if other != region and number is not None and phonenumbers.is_valid_number(number):
                    return PiiSpan("phone", start, start + len(piece), piece)
    return None


def parse_phone_number(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    """`phonenumbers.parse`, None where it cannot read `text` at all."""
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def _plausible_phone(text: str, start: int, raw: str, region: str) -> bool:
    """A possible-but-not-valid number still counts when written like a phone number:
    internationally, in parentheses, with the region's trunk 0, or after "call"/"mobile"."""
    if raw.startswith(("+", "00", "(")) or _phone_context(text, start):
        return True
    return bool(re.match(r"0\d", raw)) and _trunk_prefix(region) == "0"


@functools.cache
def _trunk_prefix(region: str) -> str | None:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return metadata.national_prefix if metadata else None


def _phone_context(text: str, start: int) -> bool:
    """A word like "call", "mobile" or "number" shortly before."""
    return bool(_PHONE_CONTEXT.search(text, max(0, start - 40), start))


# ---- street addresses ---------------------------------------------------------------------------
_CAP = r"[A-ZÀ-ÖØ-Þ][\w'\u2019.-]*"
# atomic, and not followed by a digit: "Leeds LS6 1AB" is a city and a postcode, not two cities
_CITY = r"(?>[A-ZÀ-ÖØ-Þ][^\W\d_]*(?:['\u2019.-][^\W\d_]+)*)(?!\d)"
_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Av|Road|Rd|Lane|Ln|Boulevard|Blvd|Drive|Dr|Way|Court|Ct|Place|Pl|"
    r"Terrace|Ter|Close|Crescent|Cres|Square|Sq|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Trail|Trl|Row|"
    r"Gardens|Mews|Grove|Walk|Loop|Alley|Plaza|Hill|Parade|Esplanade|Quay|Wharf|Marg|Nagar)"
)
_SHORT_SUFFIX = r"(?:st|ave|rd|ln|blvd|dr|ct|pl|pkwy|hwy)"
_DIRECTION = r"(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?"
_UNIT = r"(?:Apt|Apartment|Unit|Suite|Ste|Flat|Floor|Fl|Room|#)\.?\s*[\w-]+"
_TAIL = (
    rf"(?:,?\s*{_UNIT})?"
    rf"(?:,\s*(?:\d{{4,5}}(?:\s?[A-Z]{{2}})?\s+)?{_CITY}(?:[ -]{_CITY}){{0,2}})?"  # city
    r"(?:,?\s+[A-Z]{2,3}(?=\s+\d))?"  # state: IL, NSW
    r"(?:,?\s+\d{4,6}(?:-\d{4})?(?!\w))?"  # zip, PIN, postcode
    r"(?:,?\s+[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}(?!\w))?"  # UK postcode
)
_ADDRESS_PATTERNS = (
    # 221B Baker Street, Apt 4 / 4821 W 34th St / Flat 3, 27 Kingsley Road, Leeds LS6 1AB
    re.compile(
        rf"(?<![\w/.,])(?:(?:Flat|Apt|Unit)\s+\w+,?\s+)?\d{{1,5}}[A-Za-z]?(?:/\d{{1,5}})?\s+"
        rf"(?:{_DIRECTION}\s+)?(?:(?:{_CAP}|\d{{1,3}}(?:st|nd|rd|th))\s+){{1,4}}{_SUFFIX}\b\.?"
        rf"(?:\s+{_DIRECTION}(?!\w))?{_TAIL}"
    ),
    # casual lowercase with an abbreviated suffix: "48 maple st"
    re.compile(rf"(?<![\w/.,])\d{{1,5}}\s+(?:[a-z]+\s+){{1,3}}{_SHORT_SUFFIX}\b\.?"),
    # Hauptstraße 12, 10115 Berlin / Keizersgracht 123 / Schillerstr. 5
    re.compile(
        r"(?<![\w])[A-ZÄÖÜ][\w'\u2019-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|"
        rf"gracht|straat|laan|plein|kade|singel|vej|gatan|gata|veien)\s+\d{{1,4}}[a-z]?\b{_TAIL}"
    ),
    # Calle Mayor 15 / Via Roma 22, Firenze / Rua Augusta 100
    re.compile(
        r"(?<![\w])(?:Calle|Avenida|Avda\.|Plaza|Paseo|Carrer|Via|Viale|Piazza|Corso|Largo|Rua|"
        rf"Praça|Travessa)\s+(?:(?:de|del|la|las|los|di|della|do|da|dos|das)\s+)*{_CAP}"
        rf"(?:\s+{_CAP}){{0,3}},?\s+\d{{1,4}}[a-z]?\b{_TAIL}"
    ),
    # 12 rue de la Paix, 75002 Paris / 14 Chemin des Vignes
    re.compile(
        r"(?i:(?<![\w])\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|av\.|boulevard|bd|place|allée|"
        r"chemin|impasse|quai|route|cours)\s+)"
        rf"(?:(?:de|du|des|la|le|l'|d')\s*)*{_CAP}(?:\s+(?:(?:de|du|des|la|le)\s+)*{_CAP}){{0,4}}"
        rf"{_TAIL}"
    ),
)


def find_addresses(text: str) -> list[PiiSpan]:
    """Street addresses: number + street name + suffix (US/UK/AU/IN), German and Dutch compound
    streets, Spanish/Italian/Portuguese and French forms; with unit, city and postcode tails."""
    spans = []
    for pattern in _ADDRESS_PATTERNS:
        for m in pattern.finditer(text):
            raw = m.group().rstrip(" ,")
            spans.append(PiiSpan("address", m.start(), m.start() + len(raw), raw))
    return spans
