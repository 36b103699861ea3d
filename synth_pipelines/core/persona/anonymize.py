"""PII anonymizer for persona exports: find names, emails, phones, URLs, IPs, card numbers, IBANs
and street addresses, and replace each with a consistent pseudonym before anything is trained.

    anonymizer = Anonymizer(b"0" * 32, known_names=["Hannah Clarke"], default_region="GB")
    result = anonymizer.anonymize("ring Hannah on 07700 900461")
    result.text          # "ring Courtney on 07700 900658"
    result.replacements  # {"name": 1, "phone": 1}

Detection lives in `pii_patterns` (structured PII) and `pii_names` + `pii_gazetteer` (names);
pseudonyms in `pii_pseudonyms`; the labelled fixture and recall report in `pii_fixture`. No
Dagster here: assets call this.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import phonenumbers

from synth_pipelines.core.errors import FieldError
from synth_pipelines.core.persona.pii_names import NameFinder, fold
from synth_pipelines.core.persona.pii_patterns import (
    PII_TYPES,
    PiiSpan,
    find_addresses,
    find_cards,
    find_emails,
    find_ibans,
    find_ips,
    find_phones,
    find_urls,
)
from synth_pipelines.core.persona.pii_pseudonyms import Pseudonyms
from synth_pipelines.core.persona.pii_wordlists import SURNAME_TITLES

__all__ = ["PII_TYPES", "AnonymizedText", "Anonymizer", "PiiSpan"]

# Overlaps go to the more specific type: an IP inside a URL is part of the URL, a name inside an
# email is part of the email, digits of a card are not a phone number.
_PRIORITY = {t: i for i, t in enumerate(("email", "url", "iban", "card", "ip", "phone", "address"))}
_PRIORITY["name"] = len(_PRIORITY)
_DIGITS = re.compile(r"\d")
_TITLE_BEFORE = re.compile(r"([^\W\d_]+)\.?\s$")


@dataclass(frozen=True)
class AnonymizedText:
    """The anonymized text, the original spans it replaced, and how many of each type."""

    text: str
    spans: list[PiiSpan]
    replacements: dict[str, int] = field(default_factory=dict)


class Anonymizer:
    """Detects and pseudonymises PII for one persona.

    `secret` keys the pseudonyms (keep one per persona, e.g. from its envelope key); `known_names`
    are the participant and contact names from the export's own metadata; `default_region` is the
    ISO country whose national phone formats the persona's messages use.
    """

    def __init__(
        self, secret: bytes, known_names: Iterable[str] = (), default_region: str = "US"
    ) -> None:
        if not isinstance(secret, bytes | bytearray) or len(secret) < 16:
            raise FieldError("secret", "secret must be at least 16 bytes (one per persona)")
        region = default_region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise FieldError(
                "default_region",
                f"default_region {default_region!r} is not an ISO 3166 country code "
                "phonenumbers knows, e.g. 'US', 'GB', 'DE', 'IN'",
            )
        self.region = region
        self._names = NameFinder(known_names)
        self._pseudonyms = Pseudonyms(
            bytes(secret),
            self._names.known | self._names.known_capitalised,
            region,
            aliases=self._names.nicknames,
        )

    def detect(self, text: str) -> list[PiiSpan]:
        """All PII spans in `text`, non-overlapping, sorted by position."""
        candidates = find_emails(text) + find_urls(text)
        digits = len(_DIGITS.findall(text))
        if digits:
            candidates += find_ips(text) + find_addresses(text)
            if digits >= 7:
                candidates += find_phones(text, self.region)
            if digits >= 8:
                candidates += find_ibans(text)
            if digits >= 13:
                candidates += find_cards(text)
        elif "::" in text:
            candidates += find_ips(text)
        candidates += self._names.find(text)
        candidates.sort(key=lambda s: (_PRIORITY[s.type], s.start - s.end, s.start))
        taken: list[PiiSpan] = []
        for span in candidates:
            if all(span.end <= t.start or span.start >= t.end for t in taken):
                taken.append(span)
        return sorted(taken, key=lambda s: s.start)

    def anonymize(self, text: str) -> AnonymizedText:
        """`text` with every detected span replaced by its pseudonym."""
        spans = self.detect(text)
        parts: list[str] = []
        counts: dict[str, int] = {}
        cursor = 0
        for span in spans:
            parts.append(text[cursor : span.start])
            if span.type == "name":
                title = _TITLE_BEFORE.search(text, max(0, span.start - 12), span.start)
                after_title = bool(title and fold(title.group(1)) in SURNAME_TITLES)
                parts.append(self._pseudonyms.name(span.text, after_title=after_title))
            else:
                parts.append(self.pseudonym(span.type, span.text))
            counts[span.type] = counts.get(span.type, 0) + 1
            cursor = span.end
        parts.append(text[cursor:])
        return AnonymizedText("".join(parts), spans, counts)

    def pseudonym(self, type: str, original: str) -> str:
        """The fake value `original` (a PII string of `type`) always maps to for this persona."""
        if type not in PII_TYPES:
            raise FieldError("type", f"type {type!r} is not one of: {', '.join(PII_TYPES)}")
        return getattr(self._pseudonyms, type)(original)
