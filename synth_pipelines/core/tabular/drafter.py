"""The offline drafter: a prompt in plain English → a `TableSchema` a person can edit and confirm.

No model, no network: the row count, the table name and the column list are read off the prompt
with a few patterns, and each column's type, semantic type and bounds come from a rule table keyed
on the words of its name ("amount" → positive float with 2 decimals, "created_at" → datetime,
"status" → category active/inactive/pending). Unknown names fall back to a string of words.

    >>> schema = draft_schema("Generate 10k transactions with user ID, amount, currency")
    >>> schema.rows, [c.name for c in schema.columns]
    (10000, ['user_id', 'amount', 'currency'])

The row count defaults to `DEFAULT_ROWS` (1,000) when the prompt names none.

This module reads the prompt (row count, table name, column list with its hints); the rule table
that turns a column name into a spec is `drafter_rules`, its vocabulary `drafter_words`.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from synth_pipelines.core.errors import FieldError
from synth_pipelines.core.tabular.drafter_phrases import (
    BOOLEAN_PAIRS,
    protect_enumerations,
    read_bounds,
    read_currency,
    read_enumeration,
    read_list,
    read_statistics,
    read_unit,
)
from synth_pipelines.core.tabular.drafter_rules import (
    Spec,
    _apply_hints,
    _finish,
    _rule,
    _singular,
)
from synth_pipelines.core.tabular.schema import SchemaError, TableSchema

__all__ = ["DEFAULT_ROWS", "EXAMPLE", "Spec", "draft_schema", "parse_row_count"]

DEFAULT_ROWS = 1_000
EXAMPLE = "Generate 1,000 customers with name, email, and signup date"

# ---------------------------------------------------------------------------------------------
# Row count
# ---------------------------------------------------------------------------------------------

_MULTIPLIERS = {
    "k": 1_000,
    "thousand": 1_000,
    "m": 1_000_000,
    "mm": 1_000_000,
    "mn": 1_000_000,
    "mil": 1_000_000,
    "million": 1_000_000,
    "millions": 1_000_000,
    "b": 1_000_000_000,
    "bn": 1_000_000_000,
    "billion": 1_000_000_000,
    "hundred": 100,
    "lakh": 100_000,
}
_WORD_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twenty": 20,
    "fifty": 50,
    "hundred": 100,
}
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_SUFFIX = r"k|mm|mn|mil|m|bn|b|thousand|millions?|billion|hundred|lakh"
_COUNT = re.compile(rf"(?<![\w.])({_NUMBER})\s*({_SUFFIX})?(?![\w])", re.IGNORECASE)
_WORD_COUNT = re.compile(
    r"\b(a|an|one|two|three|four|five|six|seven|eight|nine|ten|twenty|fifty|hundred)\s+"
    r"(hundred|thousand|million|billion)\b",
    re.IGNORECASE,
)
_ROWS_NOUN = re.compile(
    rf"({_NUMBER})\s*({_SUFFIX})?\s+(?:rows|records|entries|samples|lines|items)\b", re.IGNORECASE
)
# Numbers that are not the row count: "from 2024", "in 2023".
_NOT_COUNT_BEFORE = re.compile(r"(?:in|from|since|during|year|until|before|after)\s*$", re.I)


def _count_value(number: str, suffix: str | None) -> float:
    value = float(number.replace(",", ""))
    if suffix:
        value *= _MULTIPLIERS[suffix.lower()]
    return value


def parse_row_count(text: str) -> int | None:
    """The row count a piece of text asks for ("10k", "1.5M", "5,000", "2 million", "500 rows",
    "a thousand"), or None when it names none."""
    match = _ROWS_NOUN.search(text)
    if match:
        return round(_count_value(match.group(1), match.group(2)))
    for match in _COUNT.finditer(text):
        if _NOT_COUNT_BEFORE.search(text[: match.start()]):
            continue
        return round(_count_value(match.group(1), match.group(2)))
    match = _WORD_COUNT.search(text)
    if match:
        return _WORD_NUMBERS[match.group(1).lower()] * _MULTIPLIERS[match.group(2).lower()]
    return None


# ---------------------------------------------------------------------------------------------
# Column list and table name
# ---------------------------------------------------------------------------------------------

_EXPLICIT_INTRO = re.compile(
    r"\b(?:the\s+following\s+)?(?:columns|fields|attributes|properties)\s*:", re.IGNORECASE
)
_INTRO = re.compile(
    r"\b(?:with|containing|including|includes|include|having|has|have|consisting\s+of|"
    r"comprising|made\s+up\s+of|where\s+each\s+(?:row\s+)?has)\b",
    re.IGNORECASE,
)
_LEAD_IN = re.compile(
    r"^\s*(?:(?:the|following|these|fields?|columns?|attributes?|properties|"
    r"their|its|each|every|one|a|an|of|for|record|row)\b[\s:]+)+",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*(?:[-*•·+]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"\.(?:\s+(?=[A-Z])|\s*$)")
_RANGE = re.compile(
    r"(?:\bfrom\s+|\bbetween\s+|\()?\$?(-?\d+(?:\.\d+)?)\s*(?:-|\u2013|\bto\b|\band\b|\.\.)\s*"
    r"\$?(-?\d+(?:\.\d+)?)\)?",
    re.IGNORECASE,
)
_PROTECTED_RANGE = re.compile(
    r"\bbetween\s+(\$?-?\d+(?:\.\d+)?)\s+and\s+(\$?-?\d+(?:\.\d+)?)", re.IGNORECASE
)
_FILLER_WORDS = {
    "a",
    "an",
    "the",
    "their",
    "his",
    "her",
    "its",
    "each",
    "every",
    "some",
    "also",
    "plus",
    "optional",
    "optionally",
    "unique",
    "nullable",
    "column",
    "field",
    "values",
}
_ARTICLES = {"a", "an", "the", "their", "his", "her", "its"}
_JUNK = {"etc", "and so on", "more", "others", "other fields", "other columns", ""}
_VERBS = re.compile(
    r"^\s*(?:please\s+)?(?:generate|create|make|produce|build|synthesi[sz]e|simulate|give\s+me|"
    r"i\s+need|i\s+want|we\s+need|need|want|write|fake|mock|draft)\b",
    re.IGNORECASE,
)
_NOUN_FILLER = re.compile(
    r"\b(?:a|an|the|some|of|synthetic|fake|random|realistic|sample|mock|dummy|dataset|data\s+set|"
    r"table|list|csv|rows?|records?|entries|approximately|about|around|roughly|over|up\s+to|"
    r"data|new)\b",
    re.IGNORECASE,
)


_UNIT_SPELLINGS = re.compile(r"\b(?:mmHg|kWh|dBm|dB|Mbps|GB|MB|kW|MHz|GHz|mg/dL)\b")


def _snake(text: str) -> str:
    text = re.sub(r"\be[-\s]?mail\b", "email", text, flags=re.IGNORECASE)
    text = re.sub(r"'s\b", "", text)
    text = re.sub(_UNIT_SPELLINGS, lambda m: m.group(0).lower(), text)  # mmHg → mmhg
    text = re.sub(r"([a-z0-9])([A-Z])(?=[a-z])", r"\1_\2", text)  # camelCase → camel_Case
    text = re.sub(r"([a-z0-9])([A-Z]{2,})\b", r"\1_\2", text)  # userID → user_ID; IoT stays
    text = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
    return re.sub(r"_+", "_", text)


def _split_top_level(text: str) -> list[str]:
    """Split on commas, semicolons, newlines, '&', 'and', 'plus', 'as well as' — not inside
    brackets, so "status (active, inactive)" and "(between 1 and 5)" stay whole."""
    text = _PROTECTED_RANGE.sub(
        lambda m: re.sub(r"\band\b", "\x02", m.group(0), flags=re.IGNORECASE), text
    )

    def protect(match: re.Match[str]) -> str:
        inner = re.sub(r"\band\b", "\x02", match.group(0), flags=re.IGNORECASE)
        return inner.replace(",", "\x01").replace(";", "\x01")

    text = re.sub(r"\([^()]*\)", protect, text)
    text = protect_enumerations(text, "\x01")
    parts = re.split(
        r"\s*(?:[,;\n&]|\band\b|\bplus\b|\bas\s+well\s+as\b)\s*", text, flags=re.IGNORECASE
    )
    return [part.replace("\x01", ",").replace("\x02", "and").strip() for part in parts]


def _column_text(prompt: str) -> tuple[str, str, str]:
    """(the text before the column list, the column list text, the text after it)."""
    explicit = _EXPLICIT_INTRO.search(prompt)
    if explicit:
        head, rest = prompt[: explicit.start()], prompt[explicit.end() :]
    else:
        intro = _INTRO.search(prompt)
        colon = prompt.find(":")
        if intro and (colon < 0 or intro.start() < colon):
            head, rest = prompt[: intro.start()], prompt[intro.end() :]
        elif colon >= 0:
            head, rest = prompt[:colon], prompt[colon + 1 :]
        else:
            lines = prompt.splitlines()
            bullets = [i for i, line in enumerate(lines) if _BULLET.match(line)]
            if not bullets:
                return prompt, "", ""
            head, rest = "\n".join(lines[: bullets[0]]), "\n".join(lines[bullets[0] :])
    lines = [line for line in rest.splitlines() if line.strip()]
    if len(lines) > 1 and sum(bool(_BULLET.match(line)) for line in lines) >= 2:
        # A bullet list: one column per bullet; stop at the first non-bullet line after them.
        kept: list[str] = []
        for index, line in enumerate(lines):
            if _BULLET.match(line):
                kept.append(_BULLET.sub("", line))
            elif kept:
                return head, "\n".join(kept), "\n".join(lines[index:])
            else:
                kept.append(line)
        return head, "\n".join(kept), ""
    end = _SENTENCE_END.search(rest)
    return (head, rest[: end.start()], rest[end.end() :]) if end else (head, rest, "")


def _table_name(head: str) -> str:
    intro = _INTRO.search(head)
    text = _VERBS.sub("", head[: intro.start()] if intro else head)
    text = _COUNT.sub(" ", text)
    text = _WORD_COUNT.sub(" ", text)
    text = _NOUN_FILLER.sub(" ", text)
    words = _snake(text).split("_")
    name = "_".join(word for word in words if word)[:63].strip("_")
    return name or "table"


_CONNECTORS = {"with", "of", "in", "and", "or", "to", "from", "for", "as", "values"}
_TAIL = re.compile(
    r"(?<!-)\b(?:in|as|like|e\.g\.|such\s+as|stored\s+as|formatted|format)\b", re.IGNORECASE
)
_NULLABLE = re.compile(
    r"\b(?:optional|nullable|may\s+be\s+(?:null|empty|missing)|sometimes\s+(?:missing|empty)|"
    r"can\s+be\s+(?:null|empty|missing))\b",
    re.IGNORECASE,
)
_UNIQUE = re.compile(r"\b(?:unique|distinct)\b", re.IGNORECASE)
_READERS = (read_list, read_statistics, read_bounds, read_currency, read_unit, read_enumeration)


def _read(text: str, hints: dict[str, Any]) -> str:
    for reader in _READERS:
        text = reader(text, hints)
    return text


def _bracket(inside: str, hints: dict[str, Any]) -> None:
    """What a bracket after a column name says: a range, categories, a currency, a unit, or
    else a description."""
    inside = inside.strip()
    range_match = _RANGE.fullmatch(inside)
    if range_match:
        hints["range"] = (float(range_match.group(1)), float(range_match.group(2)))
        return
    found: dict[str, Any] = {}
    left = _read(inside, found)
    if found and not left.strip(" ,;"):
        hints.update(found)
        return
    options = [o.strip() for o in re.split(r"[,/|]| or ", inside) if o.strip()]
    if len(options) >= 2 and all(len(o) <= 30 for o in options):
        if {o.lower() for o in options} in BOOLEAN_PAIRS:
            hints["boolean"] = True
        else:
            hints["categories"] = options
    else:
        hints.setdefault("description", inside)


def _name_words(text: str) -> list[str]:
    all_words = [w for w in _snake(text).split("_") if w]
    # Filler words go at the ends ("optional notes field"); in the middle only articles do
    # ("field of study" stays).
    words = list(all_words)
    while words and words[0] in _FILLER_WORDS and words[1:2] != ["of"]:
        words.pop(0)
    while words and words[-1] in _FILLER_WORDS:
        words.pop()
    words = [w for w in words if w not in _ARTICLES] or all_words
    while words and words[-1] in _CONNECTORS:
        words.pop()
    while words and words[0] in _CONNECTORS - {"in"}:
        words.pop(0)
    return words


def _parse_item(item: str) -> tuple[str | None, dict[str, Any], list[str]]:
    """An item of the column list → (snake_case name or None, hints read off it, the phrases
    of it nothing read)."""
    hints: dict[str, Any] = {}
    raw = _BULLET.sub("", item).strip().strip(".").strip()
    if not raw or raw.lower() in _JUNK:
        return None, hints, []
    match = _NULLABLE.search(raw)
    if match:
        hints["nullable"] = 0.1
        raw = (raw[: match.start()] + raw[match.end() :]).strip()
    match = _UNIQUE.search(raw)
    if match:
        hints["unique"] = True
        raw = (raw[: match.start()] + raw[match.end() :]).strip()
    # "name: description" / "name - description" in bullet lists.
    described = re.match(r"^([^:()]+?)\s*(?::|\s-\s|\s—\s)\s*(.+)$", raw)
    if described:
        raw, description = described.group(1), described.group(2)
        found: dict[str, Any] = {}
        if _read(description, found).strip(" ,;."):
            hints["description"] = description
        else:
            hints.update(found)
    bracket = re.search(r"\(([^)]*)\)", raw)
    if bracket:
        _bracket(bracket.group(1), hints)
        raw = (raw[: bracket.start()] + " " + raw[bracket.end() :]).strip()
    raw = _read(raw, hints)
    unread: list[str] = []
    tail = _TAIL.search(raw)
    if tail and raw[: tail.start()].strip():  # "in stock" is a name, "price in USD" a hint
        rest = raw[tail.start() :].strip()
        raw = raw[: tail.start()]
        if _name_words(rest):
            unread.append(rest)
    words = _name_words(raw)
    if not words or all(w.isdigit() for w in words):
        return None, hints, [item.strip()] if raw.strip() else unread
    if len(words) > 5:
        return None, hints, [item.strip()]  # a sentence, not a column name
    name = "_".join(words)
    if name[0].isdigit():
        name = f"col_{name}"
    return name[:63], hints, unread


_ENTITIES = re.compile(
    rf"\b(?:for|across|from|over|covering|spanning|among)\s+({_NUMBER})\s+"
    r"(?:different\s+|distinct\s+|unique\s+|individual\s+|separate\s+)?"
    r"((?:[a-z]+\s+)?(?:[a-z][a-z-]*s|people|children|men|women))\b",
    re.IGNORECASE,
)
_IRREGULAR = {"people": "person", "children": "child", "men": "man", "women": "woman"}
_NOT_ENTITIES = {
    "rows", "records", "entries", "samples", "lines", "items", "years", "months", "days",
    "weeks", "hours", "minutes", "seconds", "columns", "fields",
}  # fmt: skip
_TIME_SERIES = re.compile(
    r"[,;]?\s*\b(?:every\s+(?:\d+\s+)?(?:second|minute|hour|day|week|month)s?|"
    r"(?:per|each)\s+(?:second|minute|hour|day)|"
    r"(?:hourly|daily|weekly|monthly|minutely)(?=\s*(?:[,;:.]|$)))",
    re.IGNORECASE,
)


_STEP_UNITS = {"second": 1, "minute": 60, "hour": 3_600, "day": 86_400, "week": 604_800}
_STEP_WORDS = {"minutely": 60, "hourly": 3_600, "daily": 86_400, "weekly": 604_800}


def _step_seconds(phrase: str) -> int | None:
    """ "every 15 minutes" → 900, "hourly" → 3600, "per second" → 1; None for a step of no
    fixed length (monthly)."""
    lowered = phrase.lower()
    if lowered in _STEP_WORDS:
        return _STEP_WORDS[lowered]
    match = re.search(r"(\d+)?\s*(second|minute|hour|day|week)s?\b", lowered)
    if not match:
        return None
    return int(match.group(1) or 1) * _STEP_UNITS[match.group(2)]


def _make_series(columns: list[Spec], step: int | None, entity_id: str | None) -> bool:
    """Space the first datetime column (or date column, for whole-day steps) as a regular
    series of `step` seconds from 30 days ago, per entity when `entity_id` names the entity's
    id column. False when there is no such column or step."""
    if step is None:
        return False
    kinds = ("datetime", "date") if step % 86_400 == 0 else ("datetime",)
    column = next((c for c in columns if c["type"] in kinds), None)
    if column is None:
        return False
    start = date.today() - timedelta(days=30)
    column["min"] = (
        start.isoformat()
        if column["type"] == "date"
        else datetime.combine(start, time.min).isoformat()
    )
    column.pop("max", None)
    column.pop("unique", None)
    column["step_seconds"] = float(step)
    if entity_id is not None:
        column["series_of"] = entity_id
    return True


_PER_PARENT = re.compile(
    r"[,;]?\s*\b(?:for\s+each|for\s+every|per|each)\s+([a-z]+)\s*,?\s*(?:has\s+|gets\s+|with\s+|"
    r"having\s+)?(\d+)\s*(?:-|\u2013|to)\s*(\d+)\s+([a-z]+)\b[,;]?",
    re.IGNORECASE,
)
_CHILDREN_PER = re.compile(
    r"[,;]?\s*\b(\d+)\s*(?:-|\u2013|to)\s*(\d+)\s+(?:([a-z]+)\s+)?(?:per|for\s+each|for\s+every|each)\s+"
    r"([a-z]+)\b[,;]?",
    re.IGNORECASE,
)


def _child_count(head: str) -> tuple[str, tuple[str, int, int] | None]:
    """ "for each customer, 1-10 orders" / "1 to 10 orders per customer" → (the head without
    it, ("customer", 1, 10))."""
    match = _PER_PARENT.search(head)
    if match:
        parent, least, most = match.group(1), match.group(2), match.group(3)
    else:
        match = _CHILDREN_PER.search(head)
        if not match:
            return head, None
        least, most, parent = match.group(1), match.group(2), match.group(4)
    least_n, most_n = sorted((int(least), int(most)))
    rest = head[: match.start()] + " " + head[match.end() :]
    return rest, (_singular(parent.lower()), max(least_n, 1), max(most_n, 1))


def _entity_count(head: str) -> tuple[str, tuple[str, int] | None]:
    """ "readings for 20 devices" → (the head without it, ("device", 20)); "for 60 cell
    towers" → ("cell_tower", 60)."""
    for match in _ENTITIES.finditer(head):
        words = match.group(2).lower().split()
        if words[-1] in _NOT_ENTITIES:
            continue
        if len(words) == 2 and (words[0] in _NOT_ENTITIES or _COUNT.fullmatch(words[0])):
            continue
        count = round(_count_value(match.group(1), None))
        noun = "_".join([*words[:-1], _IRREGULAR.get(words[-1]) or _singular(words[-1])])
        return head[: match.start()] + " " + head[match.end() :], (noun, count)
    return head, None


def _entity_id(entity: str, names: dict[str, int]) -> str:
    """The id column an entity count is the cardinality of: `<entity>_id`, else the id column
    of its last word ("cell_tower" → tower_id when the prompt names one)."""
    for candidate in (f"{entity}_id", f"{entity.split('_')[-1]}_id"):
        if candidate in names:
            return candidate
    return f"{entity}_id"


def draft_schema(prompt: str) -> TableSchema:
    """A TableSchema for a prompt such as "Generate 10k financial transactions with user ID,
    amount, currency, and timestamp". `rows` is the count the prompt names (DEFAULT_ROWS when it
    names none); `description` is the prompt; `warnings` lists each phrase of the prompt that was
    not turned into a column or a constraint.

    FieldError("prompt", …) when the prompt is empty or names no columns."""
    if prompt is None or not str(prompt).strip():
        raise FieldError("prompt", f"prompt is empty: describe the table, e.g. {EXAMPLE!r}")
    prompt = str(prompt).strip()
    # A child count first, from the whole prompt: its "with" ("each student with 3 to 8
    # exams") is not where the column list starts.
    text, children = _child_count(prompt)
    head, listing, trailing = _column_text(text)
    head, entities = _entity_count(head)
    warnings: list[str] = []
    series = _TIME_SERIES.search(head)
    if series:
        head = head[: series.start()] + " " + head[series.end() :]
    rows = parse_row_count(head)
    if rows is None:
        rest = f"{head} {listing} {trailing}"  # without the entity and child counts
        rows = parse_row_count(rest) if _ROWS_NOUN.search(rest) else None
    if rows is None and entities and children and entities[0] == children[0]:
        rows = entities[1] * (children[1] + children[2]) // 2  # 300 students, 3-8 exams each
    if rows is None:
        rows = DEFAULT_ROWS
    if rows < 1:
        raise FieldError("prompt", f"the prompt asks for {rows} rows: ask for at least 1")
    table = _table_name(head)

    columns: list[Spec] = []
    seen: dict[str, int] = {}
    for item in _split_top_level(_LEAD_IN.sub("", listing)):
        name, hints, unread = _parse_item(item)
        for phrase in unread:
            if phrase == item.strip():
                warnings.append(f"not read as a column: {phrase!r}")
            else:
                warnings.append(f"{phrase!r} (in {item.strip()!r}) was not read")
        if name is None:
            continue
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        spec, ignored = _apply_hints(_rule(name, name.split("_"), table), hints, name)
        warnings.extend(f"{item.strip()!r}: {reason}" for reason in ignored)
        columns.append({"name": name, **spec})
    if not columns:
        raise FieldError(
            "prompt",
            f"no columns found in the prompt: name the columns, e.g. {EXAMPLE!r}",
        )
    if entities is not None:
        entity, count = entities
        id_name = _entity_id(entity, seen)
        if id_name not in seen:
            columns.insert(0, {"name": id_name, "type": "integer", "semantic_type": "id"})
        for column in columns:
            if column["name"] == id_name:
                column.update({"type": "integer", "semantic_type": "id", "min": 1, "max": count})
                column.pop("unique", None)
                column["description"] = f"{count} {entity.replace('_', ' ')}s"
    if children is not None:
        parent, least, most = children
        parent_id = f"{parent}_id"
        if parent_id not in {column["name"] for column in columns}:
            columns.insert(0, {"name": parent_id, "type": "integer", "semantic_type": "id"})
        for column in columns:
            if column["name"] == parent_id:
                column.update({"type": "integer", "semantic_type": "id", "min": 1})
                column["group_size"] = [least, most]
                if not (entities and entities[0] == parent):
                    column.pop("max", None)  # else the entity count's max: 300 students
                column.pop("unique", None)
                column["description"] = f"{least} to {most} rows per {parent}" + (
                    f", {column['max']} {parent.replace('_', ' ')}s" if "max" in column else ""
                )
    if series:
        phrase = series.group(0).strip(" ,;")
        id_name = _entity_id(entities[0], seen) if entities else None
        if not _make_series(columns, _step_seconds(phrase), id_name):
            warnings.append(
                f"{phrase!r}: no date or datetime column to space as a series (or a step that "
                "is not regular, such as monthly): timestamps are drawn at random"
            )
    if trailing.strip():
        warnings.append(f"not read: {trailing.strip()!r}")
    columns = _finish(columns, table, rows)
    data = {
        "name": table,
        "description": prompt,
        "rows": rows,
        "columns": columns,
        "warnings": warnings,
    }
    try:
        schema = TableSchema.parse(data)
    except SchemaError as exc:
        # A hint that broke a column (a range on the wrong type…): draft without the hints.
        plain = [
            {"name": c["name"], **_rule(c["name"], c["name"].split("_"), table)} for c in columns
        ]
        data["columns"] = _finish(plain, table, rows)
        data["warnings"] = [*warnings, f"the prompt's constraints were dropped: {exc}"]
        schema = TableSchema.parse(data)
    return schema
