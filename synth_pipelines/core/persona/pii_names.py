"""Person-name detection: the export's own participant names, a gazetteer built from Faker's
locale data, titles ("Dr."), cues ("hey X", "my sister X") and adjacency ("Kwame Mensah").

Tokens are classed once (known, gazetteer name, common word that is also a name, unknown
capitalised word), then runs of tokens joined by single spaces become one span.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from synth_pipelines.core.persona.pii_gazetteer import NOT_NAMES, fold, load_gazetteer
from synth_pipelines.core.persona.pii_patterns import PiiSpan
from synth_pipelines.core.persona.pii_wordlists import (
    COMMON_WORDS,
    FUNCTION_WORDS,
    GIVEN_NAME_WORDS,
    LOCATION_PREPS,
    MONTHS_DAYS,
    NATIONALITIES,
    ORG_PLACE_NOUNS,
    PARTICLES,
    PERSON_CUES,
    PLACE_PREFIXES,
    PLACES,
    SPEECH_VERBS,
    SUBJECT_VERBS,
    TITLES,
)

NAME_WORD = re.compile(r"[^\W\d_]+(?:['\u2019\-][^\W\d_]+)*")


@dataclass
class _Token:
    start: int
    end: int  # possessive "'s" excluded
    text: str
    key: str
    cap: bool
    initial: bool
    strength: int = 0  # 0 none, 1 may join a name, 2 a name, 3 a name for sure
    unknown_cap: bool = False
    last_only: bool = False
    never_alone: bool = False


def _is_initial(text: str, start: int) -> bool:
    """Whether a word starts a sentence (or a line, or follows an emoji)."""
    prefix = text[max(0, start - 40) : start].rstrip(" \t\"'\u201c\u2018\u00ab(*_")
    if not prefix:
        return True
    c = prefix[-1]
    if c in ".!?…:;\n\r":
        return True
    return not (c.isalnum() or c in ",&/")


class NameFinder:
    """Finds person names in messages of one persona; `known_names` come from export metadata."""

    def __init__(self, known_names: Iterable[str] = ()) -> None:
        self.gazetteer = load_gazetteer()
        self.known: set[str] = set()  # parts of >= 3 letters, not function words: any case
        self.known_capitalised: set[str] = set()  # of contacts like "Pizza Place": capitalised
        self.known_short: set[str] = set()  # shorter parts: only next to another name
        self.nicknames: dict[str, str] = {}  # prefixes of known parts: "dan" of "daniel"
        for full in sorted(known_names):
            if "@" in full or "://" in full:
                continue  # an address-book entry that is an email or a link, not a name
            parts = set()
            for m in NAME_WORD.finditer(full):
                key = fold(m.group())
                parts |= {p for p in {key, *key.split("-")} if p not in FUNCTION_WORDS}
            parts -= PARTICLES
            gaz = self.gazetteer
            person = any(p in gaz.first or p in gaz.last for p in parts)
            for part in sorted(parts):  # nicknames: the first part to claim a prefix keeps it
                if len(part) < 3:
                    self.known_short.add(part)
                    continue
                (self.known if person else self.known_capitalised).add(part)
                if person and len(part) >= 5 and part.isalpha():
                    for n in range(3, len(part)):
                        self.nicknames.setdefault(part[:n], part)
        self.known_capitalised -= self.known
        for word in NOT_NAMES | self.known:
            self.nicknames.pop(word, None)

    def find(self, text: str) -> list[PiiSpan]:
        """Name spans in `text`, sorted, non-overlapping; possessive "'s" left out."""
        tokens = self._tokens(text)
        if not tokens:
            return []
        for i, token in enumerate(tokens):
            self._classify(text, tokens, i, token)
        self._pairs(text, tokens)
        return self._runs(text, tokens)

    def _tokens(self, text: str) -> list[_Token]:
        tokens = []
        for m in NAME_WORD.finditer(text):
            word, end = m.group(), m.end()
            if word[-2:] in ("'s", "\u2019s") and len(word) > 3:
                word, end = word[:-2], end - 2
            # "IBAN", "OK", "LoRA", "NAs" are not written like names; "McDonald", "DeShawn" are
            cap = word[0].isupper() and (
                len(word) == 1 or not (word[1].isupper() or word[-1].isupper())
            )
            tokens.append(
                _Token(m.start(), end, word, fold(word), cap, _is_initial(text, m.start()))
            )
        return tokens

    def _lookup(self, key: str) -> tuple[str | None, bool]:
        """(kind, last_only) of a folded word: kind is "known" (a contact's name, any case),
        "known_capitalised", "first", "last" (gazetteer) or None; last_only: only a surname."""
        gaz = self.gazetteer
        if key in self.known or key in self.nicknames:
            return "known", False
        if key in self.known_capitalised:
            return "known_capitalised", False
        if key in gaz.first or key in GIVEN_NAME_WORDS:
            return "first", False
        if key in gaz.last:
            return "last", True
        if key[:2] in ("o'", "d'") and len(key) > 4:  # O'Connor, D'Angelo
            return self._lookup(key[2:])
        parts = [p for p in key.split("-") if len(p) >= 3 and p not in PARTICLES]
        if "-" in key and parts:  # Mary-Jane, Al-Farsi: every part a name, not "Five-a-side"
            kinds = [self._lookup(p) for p in parts]
            if all(k for k, _ in kinds):
                return kinds[0][0], kinds[-1][1]
        return None, False

    def _classify(self, text: str, tokens: list[_Token], i: int, t: _Token) -> None:
        key = t.key
        if len(key) < 2 or key in FUNCTION_WORDS or key in PARTICLES:
            return
        prev = tokens[i - 1] if i else None
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        gap_before = text[prev.end : t.start] if prev else ""
        if prev and prev.key in TITLES and gap_before in (" ", ". ") and t.cap:
            t.strength = 3
            return
        kind, t.last_only = self._lookup(key)
        if kind is None and key in self.known_short:
            t.strength = 1
            return
        if key in MONTHS_DAYS or key in NATIONALITIES:
            t.never_alone = t.cap and kind is not None
            return
        prev_key = prev.key if prev else ""
        next_key = nxt.key if nxt else ""
        cued = prev_key in PERSON_CUES and gap_before.strip(" ,") == ""
        if prev and prev.cap and prev_key in PLACE_PREFIXES and gap_before == " ":
            return  # "São Paulo", "San Jose"
        if kind is not None and key not in COMMON_WORDS and key not in PLACES:
            if t.cap or kind == "known":
                t.strength = 3
            elif cued and kind in ("first", "last") and len(key) >= 3:
                t.strength = 2  # "ask hiroshi": a lower-case gazetteer name after a cue
            return
        if not t.cap:
            return
        if kind is not None:  # a common word or a place that is also a name
            if prev_key == "the" or (key in PLACES and prev_key in LOCATION_PREPS):
                return
            subject = next_key in SUBJECT_VERBS or (
                next_key == "and" and i + 2 < len(tokens) and tokens[i + 2].key in ("i", "me")
            )
            if (
                cued
                or (key in GIVEN_NAME_WORDS and (not t.initial or subject))
                or (key in PLACES and not t.initial)
            ):
                t.strength = 2
            else:
                t.strength = 1  # "Server", "Visa": a name only next to another name
            return
        if key in NOT_NAMES or key in ORG_PLACE_NOUNS:
            return
        t.unknown_cap = True
        if (
            (cued and not t.initial)
            or next_key in SPEECH_VERBS
            or self._vocative(text, t)
            or self._sign_off(text, t)
        ):
            t.strength = 2

    @staticmethod
    def _vocative(text: str, t: _Token) -> bool:
        """ "see you soon, Seun." / "thanks, Wei!": one word set off by a comma at the end."""
        before = text[max(0, t.start - 8) : t.start].rstrip(" ")
        after = text[t.end : t.end + 8].lstrip(" ")
        return before.endswith(",") and (not after or after[0] in ".!?\n")

    @staticmethod
    def _sign_off(text: str, t: _Token) -> bool:
        """ "Best,\nWei": a word alone on its line after a line ending in a comma."""
        line_start = text.rfind("\n", 0, t.start) + 1
        line_end = text.find("\n", t.end)
        line_end = len(text) if line_end < 0 else line_end
        alone = not text[line_start : t.start].strip(" -—") and not text[t.end : line_end].strip(
            " .!"
        )
        previous = text[max(0, line_start - 40) : line_start].rstrip()
        return alone and line_start > 0 and previous.endswith(",")

    def _pairs(self, text: str, tokens: list[_Token]) -> None:
        """ "Chiara and Lorenzo": an unknown capitalised word paired with a name is a name."""
        for i in range(len(tokens) - 2):
            a, conj, b = tokens[i], tokens[i + 1], tokens[i + 2]
            if conj.key != "and" and text[a.end : b.start].strip() != "&":
                continue
            if a.strength >= 2 and b.unknown_cap and b.strength < 2:
                b.strength = 2
            elif b.strength >= 2 and a.unknown_cap and a.strength < 2:
                a.strength = 2

    def _runs(self, text: str, tokens: list[_Token]) -> list[PiiSpan]:
        spans: list[PiiSpan] = []
        i = 0
        while i < len(tokens):
            if tokens[i].strength < 2:
                i += 1
                continue
            lo = hi = i
            # extend right over names, particles, surnames we do not know, joinable words
            while hi + 1 < len(tokens) and text[tokens[hi].end : tokens[hi + 1].start] == " ":
                nxt = tokens[hi + 1]
                if (
                    nxt.strength >= 1
                    or nxt.unknown_cap
                    or (nxt.key in PARTICLES and self._particle_bridge(text, tokens, hi + 1))
                    or (nxt.never_alone and nxt.last_only)
                ):
                    hi += 1
                else:
                    break
            while lo > 0 and text[tokens[lo - 1].end : tokens[lo].start] == " ":
                prv, cur = tokens[lo - 1], tokens[lo]
                if (
                    prv.strength >= 1
                    or (prv.key in PARTICLES and prv.cap)
                    or ((prv.unknown_cap or prv.never_alone) and cur.last_only)
                ):
                    lo -= 1
                else:
                    break
            while hi > lo and tokens[hi].key in PARTICLES:
                hi -= 1
            run = tokens[lo : hi + 1]
            org = any(t.cap and t.key in ORG_PLACE_NOUNS for t in run) or (
                hi + 1 < len(tokens) and self._org_follows(text, tokens, hi)
            )
            if org and (run[0].strength < 3 or run[0].key in ORG_PLACE_NOUNS):
                # "Golden Gate Bridge", "Victoria Station": a place or a brand ("Tom Hall" stays)
                run = [t for t in run if t.strength == 3 and t.key not in ORG_PLACE_NOUNS]
            if run:
                spans.append(
                    PiiSpan("name", run[0].start, run[-1].end, text[run[0].start : run[-1].end])
                )
            i = hi + 1
        return spans

    @staticmethod
    def _particle_bridge(text: str, tokens: list[_Token], j: int) -> bool:
        """Particles join a name only when a name-like word follows them: "van der Berg"."""
        while j < len(tokens) and tokens[j].key in PARTICLES:
            if j + 1 >= len(tokens) or text[tokens[j].end : tokens[j + 1].start] != " ":
                return False
            j += 1
        return j < len(tokens) and (tokens[j].strength >= 1 or tokens[j].unknown_cap)

    @staticmethod
    def _org_follows(text: str, tokens: list[_Token], hi: int) -> bool:
        nxt = tokens[hi + 1]
        return text[tokens[hi].end : nxt.start] == " " and nxt.cap and nxt.key in ORG_PLACE_NOUNS
