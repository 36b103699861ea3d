"""The offline drafter's phrase readers: what an item of the column list says besides its name.

Each reader takes the item's text, reads one construct into `hints` and returns the text without
it, so that what no reader took is left over — the name, and whatever the drafter could not read
(which `drafter` lists as a warning):

- statistics: "around 21 with std 2", "mean 50", "averaging 3.5", "± 4";
- ranges and bounds: "between 1 and 5", "from 18 to 65", "1-10", "at least 0", "at most 99",
  "up to 500", "positive";
- currencies: "in EUR", "USD", "euros", "$";
- units: "celsius", "in kg", "percent", "%", "volts", "minutes";
- lists: "3 to 5 products as a JSON list" (the count is the range);
- enumerations: "pending/shipped/delivered", "one of a, b or c", "pending, shipped or delivered"
  (the comma form is kept whole by `protect_enumerations` before the list is split).
"""

from __future__ import annotations

import re
from typing import Any

NUM = r"-?\d+(?:,\d{3})*(?:\.\d+)?"

CURRENCY_CODES = {
    "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "CNY", "INR", "BRL", "MXN", "SEK", "NOK",
    "DKK", "PLN", "ZAR", "SGD", "HKD", "NZD", "KRW", "TRY", "AED",
}  # fmt: skip
_CURRENCY_WORDS = {
    "euro": "EUR",
    "euros": "EUR",
    "dollar": "USD",
    "dollars": "USD",
    "us dollars": "USD",
    "pounds sterling": "GBP",
    "sterling": "GBP",
    "yen": "JPY",
    "rupees": "INR",
    "€": "EUR",
    "$": "USD",
    "£": "GBP",
}
# unit as written → the unit recorded on the column
UNITS = {
    "celsius": "celsius",
    "°c": "celsius",
    "degrees celsius": "celsius",
    "degrees c": "celsius",
    "fahrenheit": "fahrenheit",
    "°f": "fahrenheit",
    "percent": "percent",
    "percentage": "percent",
    "pct": "percent",
    "%": "percent",
    "volts": "V",
    "volt": "V",
    "voltage": "V",
    "v": "V",
    "kg": "kg",
    "kilograms": "kg",
    "kgs": "kg",
    "grams": "g",
    "g": "g",
    "lbs": "lb",
    "lb": "lb",
    "minutes": "minutes",
    "mins": "minutes",
    "min": "minutes",
    "seconds": "seconds",
    "secs": "seconds",
    "sec": "seconds",
    "hours": "hours",
    "hrs": "hours",
    "days": "days",
    "ms": "ms",
    "milliseconds": "ms",
    "km": "km",
    "kilometers": "km",
    "kilometres": "km",
    "miles": "miles",
    "meters": "m",
    "metres": "m",
    "cm": "cm",
    "mm": "mm",
    "kwh": "kWh",
    "watts": "W",
    "kw": "kW",
    "mbps": "Mbps",
    "gb": "GB",
    "mb": "MB",
    "bpm": "bpm",
    "mmhg": "mmHg",
    "liters": "L",
    "litres": "L",
    "hpa": "hPa",
    "ppm": "ppm",
    "rpm": "rpm",
    "mph": "mph",
    "kmh": "km/h",
    "km/h": "km/h",
    "dbm": "dBm",
    "mg/dl": "mg/dL",
    "lux": "lux",
    "mg": "mg",
    "db": "dB",
    "mm/s": "mm/s",
    "m/s": "m/s",
    "degrees": "degrees",
    "mhz": "MHz",
    "ml": "mL",
    "g/dl": "g/dL",
}
# Units read as words of the column name ("temperature celsius" → temperature_celsius).
NAME_UNITS = {
    "celsius", "fahrenheit", "percent", "percentage", "pct", "volts", "kg", "minutes", "mins",
    "seconds", "secs", "hours", "hrs", "days", "ms", "milliseconds", "km", "miles", "meters",
    "metres", "cm", "kwh", "mbps", "gb", "mb", "bpm", "mmhg", "liters", "litres", "hpa", "ppm",
    "rpm", "mph", "kmh", "dbm", "lux", "grams", "lbs", "kilograms", "watts", "kw", "mg", "db",
    "degrees", "mhz", "ml",
}  # fmt: skip


def _num(text: str) -> float:
    return float(text.replace(",", ""))


_MEAN = re.compile(
    rf"(?:\b(?:around|about|approximately|approx\.?|roughly|averaging|centred\s+on|centered\s+on|"
    rf"mean(?:\s+of)?|average(?:\s+of)?|avg|typically|normally\s+around)|~)\s*\$?({NUM})",
    re.IGNORECASE,
)
_STD = re.compile(
    rf"(?:\b(?:with\s+)?(?:an?\s+)?(?:std|sd|stdev|std\.?\s*dev\.?|standard\s+deviation|"
    rf"spread|sigma)(?:\s+of)?|±|\+/-)\s*({NUM})",
    re.IGNORECASE,
)
_BETWEEN = re.compile(
    rf"\b(?:between|from|range(?:s|d)?(?:\s+from)?)\s+\$?({NUM})\s*(?:and|to|-|\u2013)\s*\$?({NUM})\b",
    re.IGNORECASE,
)
# Not inside a slash list: "company size 1-10/11-50/51-200" is categories, not a range.
_DASH_RANGE = re.compile(
    rf"(?<![\w./])\$?({NUM})\s*(?:-|\u2013|\.\.|\bto\b)\s*\$?({NUM})(?![\w./])"
)
_AT_LEAST = re.compile(
    rf"\b(?:at\s+least|min(?:imum)?(?:\s+of)?|no\s+less\s+than|not\s+below|from|over|above|>=|≥)"
    rf"\s*\$?({NUM})",
    re.IGNORECASE,
)
_AT_MOST = re.compile(
    rf"(?:\b(?:at\s+most|max(?:imum)?(?:\s+of)?|up\s+to|no\s+more\s+than|not\s+above|under|out\s+of|"
    rf"below)|<=|≤)\s*\$?({NUM})",
    re.IGNORECASE,
)
_POSITIVE = re.compile(r"\b(?:positive|non[-\s]?negative)\b", re.IGNORECASE)
_ONE_OF = re.compile(
    r"\b(?:one\s+of|either|values?|options?|such\s+as|e\.g\.|like)\s*:?\s+"
    r"([\w+-]+(?:\s*(?:,|/|\bor\b|\|)\s*[\w+-]+)+)\s*$",
    re.IGNORECASE,
)
BOOLEAN_PAIRS = ({"yes", "no"}, {"true", "false"}, {"y", "n"}, {"0", "1"})


def _cut(text: str, match: re.Match[str]) -> str:
    return (text[: match.start()] + " " + text[match.end() :]).strip()


_LIST = re.compile(
    r"\b(?:as\s+(?:an?\s+)?(?:json\s+)?(?:list|array)|(?:in\s+)?(?:an?\s+)?json\s+(?:list|array))"
    r"(?:\s+of\s+(?:them|values|items))?\b",
    re.IGNORECASE,
)


def read_list(text: str, hints: dict[str, Any]) -> str:
    """ "products as a JSON list", "tags as an array": the column holds JSON lists."""
    match = _LIST.search(text)
    if match:
        hints["list"] = True
        return _cut(text, match)
    return text


def read_statistics(text: str, hints: dict[str, Any]) -> str:
    match = _MEAN.search(text)
    if match:
        hints["mean"] = _num(match.group(1))
        text = _cut(text, match)
    match = _STD.search(text)
    if match:
        hints["std"] = abs(_num(match.group(1)))
        text = _cut(text, match)
    return text


_RANGE_NOUN = re.compile(r"\s*([A-Za-z%/]+)\s*$")


def read_bounds(text: str, hints: dict[str, Any]) -> str:
    for pattern in (_BETWEEN, _DASH_RANGE):
        match = pattern.search(text)
        if match:
            hints["range"] = (_num(match.group(1)), _num(match.group(2)))
            # The one word after a range at the end of the item says what it counts: a unit
            # ("from 0 to 100 percent") or the counted noun ("between 1 and 30 items"), not
            # part of the name.
            noun = _RANGE_NOUN.fullmatch(text[match.end() :])
            if noun and match.start() > 0:
                word = noun.group(1).lower()
                if word in UNITS:
                    hints.setdefault("unit", UNITS[word])
                    return text[: match.start()].strip()
                if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
                    return text[: match.start()].strip()
            return _cut(text, match)
    match = _AT_LEAST.search(text)
    if match:
        hints["min"] = _num(match.group(1))
        text = _cut(text, match)
    match = _AT_MOST.search(text)
    if match:
        hints["max"] = _num(match.group(1))
        text = _cut(text, match)
    match = _POSITIVE.search(text)
    if match:
        hints.setdefault("min", 0.0)
        hints["positive"] = True
        text = _cut(text, match)
    return text


_CURRENCY_WORD = re.compile(
    r"(?:\b(?:in|as)\s+)?(?:\b("
    + "|".join(sorted(CURRENCY_CODES))
    + r")\b|(?<!\w)("
    + "|".join(re.escape(w) for w in sorted(_CURRENCY_WORDS, key=len, reverse=True))
    + r")(?!\w))",
    re.IGNORECASE,
)


def read_currency(text: str, hints: dict[str, Any]) -> str:
    """ "in EUR", "USD", "(euros)", "$": the currency, cut from the text. A lowercase code
    stays only after "in"/"as" ("in usd"), so that words are not read as codes."""
    for match in _CURRENCY_WORD.finditer(text):
        code, word = match.group(1), match.group(2)
        if code and not (code.isupper() or match.group(0).lower().startswith(("in ", "as "))):
            continue
        if word == "$" and re.match(r"\$\s*\d", text[match.start(2) :]):
            continue  # "$5" is a bound, not the currency word
        hints["currency"] = code.upper() if code else _CURRENCY_WORDS[word.lower()]
        return _cut(text, match)
    return text


_UNIT_AFTER_IN = re.compile(
    r"\b(?:in|as|measured\s+in)\s+("
    + "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
    + r")(?!\w)",
    re.IGNORECASE,
)
_UNIT_SYMBOL = re.compile(r"(?<=[\w\s])(%|°c|°f|km/h|mm/s|m/s|mg/dl|g/dl)(?![\w/])", re.IGNORECASE)


def read_unit(text: str, hints: dict[str, Any]) -> str:
    """ "in kg", "measured in volts", "%": the unit, cut from the text. Unit words in the name
    itself ("temperature celsius") stay in the name; `name_unit` reads them."""
    match = _UNIT_AFTER_IN.search(text) or _UNIT_SYMBOL.search(text)
    if match:
        hints["unit"] = UNITS[match.group(1).lower()]
        return _cut(text, match)
    return text


def name_unit(words: list[str]) -> str | None:
    for word in reversed(words):
        if word in NAME_UNITS:
            return UNITS.get(word, word)
    return None


def _values(text: str) -> list[str]:
    parts = re.split(r"\s*(?:,|/|\||\bor\b)\s*", text, flags=re.IGNORECASE)
    return [part.strip() for part in parts if part.strip()]


def _slash_values(text: str) -> tuple[str, list[str]] | None:
    """ "reason damaged/wrong size/changed mind" → ("reason", [damaged, wrong size, changed
    mind]): the first value is the word before the first slash, the others run between slashes
    to the end (three words each at most)."""
    match = re.search(r"([\w+-]+)\s*/\s*", text)
    if not match:
        return None
    head, rest = text[: match.start()].strip(), text[match.start() :]
    values = [v.strip() for v in rest.split("/")]
    if len(values) < 2 or not all(values) or any(len(v.split()) > 3 for v in values):
        return None
    if "".join(values).lower() in {u.replace("/", "") for u in UNITS}:
        return None  # "km/h" is a unit
    return head, values


def or_values(text: str) -> tuple[str, list[str]] | None:
    """ "site left arm or right arm" → ("site", [left arm, right arm]); "service type oil
    change, tire rotation or brake repair" → ("service type", [oil change, tire rotation, brake
    repair]): the value after "or" has k words; the values before it, comma-separated, have k
    words each, and the first is the last k words of a chunk whose first words are the name."""
    match = re.search(r"^(.*?)\s+or\s+([^,;]+?)\s*$", text, re.IGNORECASE | re.DOTALL)
    if not match:
        return None
    last = match.group(2).split()
    k = len(last)
    chunks = [c.strip() for c in re.split(r"\s*,\s*", match.group(1)) if c.strip()]
    if not chunks or k > 3:
        return None
    middle = chunks[1:]
    if any(len(c.split()) != k for c in middle):
        return None
    first = chunks[0].split()
    if len(first) <= k:
        return None
    name, first_value = " ".join(first[:-k]), " ".join(first[-k:])
    return name, [first_value, *middle, " ".join(last)]


def read_enumeration(text: str, hints: dict[str, Any]) -> str:
    """ "status one of a, b or c", "status a/b/c", "status a, b or c", "site left arm or right
    arm" → categories (or a boolean for yes/no): cut from the text, which keeps the name."""
    match = _ONE_OF.search(text)
    values: list[str] = []
    if match:
        values = _values(match.group(1))
        text = text[: match.start()].strip()
    else:
        found = _slash_values(text) or or_values(text)
        if found and found[0]:
            text, values = found
    if len(values) < 2:
        return text
    # "speed tier 100/500/1000 Mbps": numbers, the unit written once after the last.
    last = re.fullmatch(rf"({NUM})\s*([A-Za-z/%]+)", values[-1])
    if last and last.group(2).lower() in UNITS and all(re.fullmatch(NUM, v) for v in values[:-1]):
        values[-1] = last.group(1)  # the values are categories: the unit goes in the text
        hints.setdefault("description", f"in {UNITS[last.group(2).lower()]}")
    if {v.lower() for v in values} in BOOLEAN_PAIRS:
        hints["boolean"] = True
    else:
        hints["categories"] = values
    return text


def protect_enumerations(text: str, keep: str) -> str:
    """Commas inside one column's enumeration ("status pending, shipped or delivered", "one of
    a, b or c") join values, not columns: replace them by `keep`, so that the list splits on
    the others. The enumeration is read back from the item by `or_values`."""
    parts = re.split(r"(\s*[,;\n]\s*)", text)
    # parts: chunk, separator, chunk, … — find each chunk holding " or " and walk back.
    chunks = parts[0::2]
    joined = [False] * len(chunks)
    for index, chunk in enumerate(chunks):
        found = re.search(r"\bor\s+(.+)$", chunk, re.IGNORECASE)
        if not found or index == 0:
            continue
        k = len(found.group(1).split())
        before = chunk[: found.start()].split()
        if len(before) != k:
            continue  # the "or" value and the one before it in this chunk must match
        start = index - 1
        while start > 0 and len(chunks[start].split()) == k:
            start -= 1
        lead = chunks[start].split()
        one_of = re.search(r"\bone\s+of\b", chunks[start], re.IGNORECASE)
        if not (one_of or len(lead) > k):
            continue
        for j in range(start, index):
            joined[j] = True
    out = []
    for index, chunk in enumerate(chunks):
        out.append(chunk)
        if index < len(chunks) - 1:
            separator = parts[2 * index + 1]
            out.append(keep if joined[index] and "," in separator else separator)
    return "".join(out)
