"""The labelled PII fixture and how the anonymizer is measured on it (tests and benchmark share it).

Fixture lines are JSON: {"text", "known_names": [...], "region": "GB" (optional, default "US"),
"spans": [{"type", "start", "end"}]}, with every PII span marked. `parse_markup` turns
"ring [[name:Hannah]] on [[phone:07700 900461]]" into text and spans, for writing new lines.

Matching rule: a marked span is recalled when detected spans of the same type cover at least 80 %
of its characters. A detected span is spurious when it overlaps no marked span of its type.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from synth_pipelines.core.persona.anonymize import PII_TYPES, Anonymizer, PiiSpan

FIXTURE_SECRET = b"persona-pii-fixture-secret"
COVERAGE = 0.8
_MARK = re.compile(r"\[\[(\w+):(.+?)\]\](?!\])")


def parse_markup(marked: str) -> tuple[str, list[dict]]:
    """ "hi [[name:Priya]]" -> ("hi Priya", [{"type": "name", "start": 3, "end": 8}])."""
    text, spans, cursor = [], [], 0
    length = 0
    for m in _MARK.finditer(marked):
        plain = marked[cursor : m.start()]
        text.append(plain)
        length += len(plain)
        pii_type, value = m.group(1), m.group(2)
        if pii_type not in PII_TYPES:
            raise ValueError(f"unknown PII type {pii_type!r} in {marked!r}")
        spans.append({"type": pii_type, "start": length, "end": length + len(value)})
        text.append(value)
        length += len(value)
        cursor = m.end()
    text.append(marked[cursor:])
    return "".join(text), spans


@dataclass(frozen=True)
class FixtureMessage:
    text: str
    known_names: tuple[str, ...]
    region: str
    spans: tuple[PiiSpan, ...]


def load_fixture(path: str | Path) -> list[FixtureMessage]:
    """Read the JSONL fixture; checks every span's offsets lie inside its text."""
    messages = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        text = row["text"]
        spans = []
        for s in row["spans"]:
            if not 0 <= s["start"] < s["end"] <= len(text) or s["type"] not in PII_TYPES:
                raise ValueError(f"{path}:{number}: bad span {s}")
            spans.append(PiiSpan(s["type"], s["start"], s["end"], text[s["start"] : s["end"]]))
        messages.append(
            FixtureMessage(
                text, tuple(row.get("known_names", ())), row.get("region", "US"), tuple(spans)
            )
        )
    return messages


@dataclass
class FixtureReport:
    """Recall per type, spurious detections, false-positive rate on PII-free messages, speed."""

    per_type: dict[str, dict[str, float]]
    spurious: dict[str, int]
    messages: int
    clean_messages: int
    clean_flagged: int
    seconds: float
    misses: list[tuple[str, PiiSpan]] = field(default_factory=list)
    false_positives: list[tuple[str, PiiSpan]] = field(default_factory=list)

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds else float("inf")

    @property
    def false_positive_rate(self) -> float:
        """Share of messages without PII in which anything was detected."""
        return self.clean_flagged / self.clean_messages if self.clean_messages else 0.0

    def table(self) -> str:
        lines = [f"{'type':<8} {'found':>5} {'total':>5} {'recall':>7} {'spurious':>8}"]
        for pii_type, row in self.per_type.items():
            lines.append(
                f"{pii_type:<8} {row['found']:>5} {row['total']:>5} {row['recall']:>7.1%} "
                f"{self.spurious.get(pii_type, 0):>8}"
            )
        lines.append(
            f"PII-free messages flagged: {self.clean_flagged}/{self.clean_messages} "
            f"({self.false_positive_rate:.1%}); {self.messages} messages, "
            f"{self.messages_per_s:,.0f} messages/s (detect, one core)"
        )
        return "\n".join(lines)


def _covered(gold: PiiSpan, detected: list[PiiSpan]) -> bool:
    hit = set()
    for d in detected:
        if d.type == gold.type:
            hit.update(range(max(gold.start, d.start), min(gold.end, d.end)))
    return len(hit) >= COVERAGE * (gold.end - gold.start)


def with_anonymizers(
    messages: list[FixtureMessage], secret: bytes = FIXTURE_SECRET
) -> list[tuple[Anonymizer, FixtureMessage]]:
    """Each message with its persona's anonymizer: one per (known names, region), shared by the
    messages that have them, as one persona's messages share one."""
    anonymizers: dict[tuple, Anonymizer] = {}
    for m in messages:
        key = (m.known_names, m.region)
        if key not in anonymizers:
            anonymizers[key] = Anonymizer(secret, m.known_names, m.region)
    return [(anonymizers[(m.known_names, m.region)], m) for m in messages]


def evaluate_fixture(path: str | Path, repeat: int = 1) -> FixtureReport:
    """Run `Anonymizer.detect` over the fixture (`repeat` times for timing) and score it.
    Anonymizers are built before the clock starts (`with_anonymizers`)."""
    messages = load_fixture(path)
    jobs = with_anonymizers(messages)
    for anonymizer, m in jobs:  # warm up: phonenumbers loads each region's metadata lazily
        anonymizer.detect(m.text)
    started = time.perf_counter()
    for _ in range(repeat):
        results = [anonymizer.detect(m.text) for anonymizer, m in jobs]
    seconds = (time.perf_counter() - started) / repeat

    found = dict.fromkeys(PII_TYPES, 0)
    total = dict.fromkeys(PII_TYPES, 0)
    spurious = dict.fromkeys(PII_TYPES, 0)
    report = FixtureReport({}, spurious, len(messages), 0, 0, seconds)
    for m, detected in zip(messages, results, strict=True):
        for gold in m.spans:
            total[gold.type] += 1
            if _covered(gold, detected):
                found[gold.type] += 1
            else:
                report.misses.append((m.text, gold))
        for d in detected:
            if not any(g.type == d.type and g.start < d.end and d.start < g.end for g in m.spans):
                spurious[d.type] += 1
                report.false_positives.append((m.text, d))
        if not m.spans:
            report.clean_messages += 1
            report.clean_flagged += bool(detected)
    report.per_type = {
        t: {
            "found": found[t],
            "total": total[t],
            "recall": found[t] / total[t] if total[t] else 1.0,
        }
        for t in PII_TYPES
    }
    return report


def recall_report(fixture_path: str | Path) -> dict[str, dict[str, float]]:
    """Recall per PII type on the fixture: {type: {"found", "total", "recall"}}."""
    return evaluate_fixture(fixture_path).per_type
