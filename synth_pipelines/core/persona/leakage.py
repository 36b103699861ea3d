"""Does a generation repeat PII of the raw corpus? Numbers are compared by their digits, text
by exact and fuzzy match: a pseudonymised phone number that shares a fictional prefix with the
real one is not a leak, while "j0n.smith@gmial.com" for "jon.smith@gmail.com" is."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from synth_pipelines.core.persona.evaluation import pii_leaks

NUMERIC_TYPES = ("phone", "card", "iban")
_DIGIT_RUN = re.compile(r"\+?\d[\d\s().-]{5,}\d")
MIN_DIGITS = 7


@dataclass(frozen=True)
class Leak:
    """Which generation repeats which PII (by index and type: a report never repeats the PII)."""

    generation_index: int
    pii_index: int
    type: str
    kind: str  # exact | fuzzy | digits


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def find_leaks(generations: Sequence[str], pii: Sequence[tuple[str, str]]) -> list[Leak]:
    """Every (generation, PII) pair where the PII reappears. `pii` holds (type, original)."""
    leaks: list[Leak] = []
    numeric = [(i, _digits(text)) for i, (kind, text) in enumerate(pii) if kind in NUMERIC_TYPES]
    for g, generation in enumerate(generations):
        runs = {_digits(m.group()) for m in _DIGIT_RUN.finditer(generation)}
        for i, digits in numeric:
            tail = digits[-MIN_DIGITS:]
            if len(digits) >= MIN_DIGITS and any(tail in run for run in runs):
                leaks.append(Leak(g, i, pii[i][0], "digits"))
    textual = [(i, text) for i, (kind, text) in enumerate(pii) if kind not in NUMERIC_TYPES]
    for leak in pii_leaks(generations, [text for _, text in textual]):
        index = textual[leak.pii_index][0]
        leaks.append(Leak(leak.generation_index, index, pii[index][0], leak.kind))
    return leaks
