"""The offline drafter: a prompt in plain English → a `TableSchema` a person can edit and confirm.

No model, no network: the row count, the table name and the column list are read off the prompt
with a few patterns, and each column's type, semantic type and bounds come from a rule table keyed
on the words of its name ("amount" → positive float with 2 decimals, "created_at" → datetime,
"status" → category active/inactive/pending). Unknown names fall back to a string of words.

    >>> schema = draft_schema("Generate 10k transactions with user ID, amount, currency")
    >>> schema.rows, [c.name for c in schema.columns]
    (10000, ['user_id', 'amount', 'currency'])

The row count defaults to `DEFAULT_ROWS` (1,000) when the prompt names none.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from synth_pipelines.core.errors import FieldError
from synth_pipelines.core.tabular.schema import SchemaError, TableSchema

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
    "value",
    "values",
}
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


def _snake(text: str) -> str:
    text = re.sub(r"\be[-\s]?mail\b", "email", text, flags=re.IGNORECASE)
    text = re.sub(r"'s\b", "", text)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)  # camelCase → camel_Case
    text = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
    return re.sub(r"_+", "_", text)


def _split_top_level(text: str) -> list[str]:
    """Split on commas, semicolons, newlines, '&', 'and', 'plus', 'as well as' — not inside
    brackets, so "status (active, inactive)" and "(between 1 and 5)" stay whole."""
    text = _PROTECTED_RANGE.sub(r"from \1 to \2", text)

    def protect(match: re.Match[str]) -> str:
        inner = re.sub(r"\band\b", "\x02", match.group(0), flags=re.IGNORECASE)
        return inner.replace(",", "\x01").replace(";", "\x01")

    text = re.sub(r"\([^()]*\)", protect, text)
    parts = re.split(
        r"\s*(?:[,;\n&]|\band\b|\bplus\b|\bas\s+well\s+as\b)\s*", text, flags=re.IGNORECASE
    )
    return [part.replace("\x01", ",").replace("\x02", "and").strip() for part in parts]


def _column_text(prompt: str) -> tuple[str, str]:
    """(the text before the column list, the column list text)."""
    explicit = _EXPLICIT_INTRO.search(prompt)
    if explicit:
        head, rest = prompt[: explicit.start()], prompt[explicit.end() :]
    else:
        intro = _INTRO.search(prompt)
        if intro:
            head, rest = prompt[: intro.start()], prompt[intro.end() :]
        elif ":" in prompt:
            head, rest = prompt.split(":", 1)
        else:
            lines = prompt.splitlines()
            bullets = [i for i, line in enumerate(lines) if _BULLET.match(line)]
            if not bullets:
                return prompt, ""
            head, rest = "\n".join(lines[: bullets[0]]), "\n".join(lines[bullets[0] :])
    lines = [line for line in rest.splitlines() if line.strip()]
    if len(lines) > 1 and sum(bool(_BULLET.match(line)) for line in lines) >= 2:
        # A bullet list: one column per bullet; stop at the first non-bullet line after them.
        kept = []
        for line in lines:
            if _BULLET.match(line):
                kept.append(_BULLET.sub("", line))
            elif kept:
                break
            else:
                kept.append(line)
        return head, "\n".join(kept)
    end = _SENTENCE_END.search(rest)
    return head, rest[: end.start()] if end else rest


def _table_name(head: str) -> str:
    intro = _INTRO.search(head)
    text = _VERBS.sub("", head[: intro.start()] if intro else head)
    text = _COUNT.sub(" ", text)
    text = _WORD_COUNT.sub(" ", text)
    text = _NOUN_FILLER.sub(" ", text)
    words = _snake(text).split("_")
    name = "_".join(word for word in words if word)[:63].strip("_")
    return name or "table"


def _parse_item(item: str) -> tuple[str, dict[str, Any]] | None:
    """An item of the column list → (snake_case name, hints read off it)."""
    hints: dict[str, Any] = {}
    raw = _BULLET.sub("", item).strip().strip(".")
    if not raw or raw.lower() in _JUNK:
        return None
    lowered = raw.lower()
    if re.search(
        r"\b(?:optional|nullable|may be (?:null|empty|missing)|sometimes missing)\b", lowered
    ):
        hints["nullable"] = 0.1
    if re.search(r"\bunique\b", lowered):
        hints["unique"] = True
    # "name: description" / "name - description" in bullet lists.
    described = re.match(r"^([^:()]+?)\s*(?::|\s-\s|\s—\s)\s*(.+)$", raw)
    if described:
        raw, hints["description"] = described.group(1), described.group(2)
    bracket = re.search(r"\(([^)]*)\)", raw)
    if bracket:
        inside = bracket.group(1)
        options = [o.strip() for o in re.split(r"[,/|]| or ", inside) if o.strip()]
        range_match = _RANGE.fullmatch(inside.strip())
        if range_match:
            hints["range"] = (float(range_match.group(1)), float(range_match.group(2)))
        elif len(options) >= 2 and all(len(o) <= 30 for o in options):
            hints["categories"] = options
        else:
            hints.setdefault("description", inside.strip())
        raw = (raw[: bracket.start()] + raw[bracket.end() :]).strip()
    range_match = _RANGE.search(raw)
    if range_match and "range" not in hints:
        hints["range"] = (float(range_match.group(1)), float(range_match.group(2)))
        raw = raw[: range_match.start()].strip()
    head = re.split(r"\b(?:in|as|like|e\.g\.|such as|stored as)\b", raw, maxsplit=1)[0]
    raw = head if head.strip() else raw  # "in stock" is a name, "price in USD" a hint
    all_words = [w for w in _snake(raw).split("_") if w]
    words = [w for w in all_words if w not in _FILLER_WORDS] or all_words
    if not words or all(w.isdigit() for w in words):
        return None
    if len(words) > 5:
        return None  # a sentence, not a column name
    name = "_".join(words)
    if name[0].isdigit():
        name = f"col_{name}"
    return name[:63], hints


# ---------------------------------------------------------------------------------------------
# Rule table: column name → column spec
# ---------------------------------------------------------------------------------------------

Spec = dict[str, Any]


def _category(*values: str, weights: list[float] | None = None) -> Spec:
    spec: Spec = {"type": "category", "categories": list(values)}
    if weights is not None:
        spec["weights"] = weights
    return spec


def _money(high: float = 10_000.0) -> Spec:
    return {
        "type": "float",
        "min": 0.01,
        "max": high,
        "distribution": "lognormal",
        "decimals": 2,
    }


def _text(kind: str) -> Spec:
    return {"type": "string", "semantic_type": kind}


def _recent(days: int = 730) -> tuple[date, date]:
    today = date.today()
    return today - timedelta(days=days), today


def _datetime_spec() -> Spec:
    low, high = _recent()
    return {
        "type": "datetime",
        "min": datetime.combine(low, time.min).isoformat(),
        "max": datetime.combine(high, time.max).replace(microsecond=0).isoformat(),
    }


def _date_spec(low: date | None = None, high: date | None = None) -> Spec:
    recent_low, recent_high = _recent()
    return {
        "type": "date",
        "min": (low or recent_low).isoformat(),
        "max": (high or recent_high).isoformat(),
    }


def _birth_date() -> Spec:
    today = date.today()
    return _date_spec(today.replace(year=today.year - 90), today.replace(year=today.year - 18))


_STATUS_BY_CONTEXT = {
    "order": ("pending", "processing", "shipped", "delivered", "cancelled", "returned"),
    "payment": ("paid", "pending", "failed", "refunded"),
    "transaction": ("completed", "pending", "failed", "reversed"),
    "shipping": ("pending", "in_transit", "delivered", "returned"),
    "delivery": ("pending", "in_transit", "delivered", "returned"),
    "ticket": ("open", "in_progress", "resolved", "closed"),
    "employment": ("full_time", "part_time", "contractor", "intern"),
    "marital": ("single", "married", "divorced", "widowed"),
    "account": ("active", "suspended", "closed"),
    "subscription": ("active", "trialing", "past_due", "cancelled"),
    "loan": ("current", "late", "default", "paid_off"),
}
_TYPE_BY_CONTEXT = {
    "transaction": ("purchase", "refund", "transfer", "withdrawal", "deposit"),
    "payment": ("credit_card", "debit_card", "paypal", "bank_transfer", "cash"),
    "account": ("checking", "savings", "credit", "investment"),
    "customer": ("individual", "business"),
    "user": ("free", "premium", "admin"),
    "event": ("page_view", "click", "signup", "purchase", "logout"),
    "device": ("desktop", "mobile", "tablet"),
    "property": ("apartment", "house", "condo", "townhouse"),
    "vehicle": ("sedan", "suv", "truck", "hatchback", "van"),
    "contract": ("full_time", "part_time", "contractor"),
    "card": ("visa", "mastercard", "amex", "discover"),
    "room": ("single", "double", "suite"),
}
_NAMED_CATEGORIES: dict[str, tuple[str, ...]] = {
    "gender": ("female", "male", "non_binary"),
    "sex": ("female", "male"),
    "tier": ("bronze", "silver", "gold", "platinum"),
    "plan": ("free", "basic", "pro", "enterprise"),
    "level": ("low", "medium", "high"),
    "segment": ("consumer", "small_business", "enterprise"),
    "priority": ("low", "medium", "high", "critical"),
    "severity": ("low", "medium", "high", "critical"),
    "department": ("engineering", "sales", "marketing", "finance", "hr", "operations", "support"),
    "channel": ("web", "mobile_app", "in_store", "phone"),
    "device": ("desktop", "mobile", "tablet"),
    "platform": ("ios", "android", "web"),
    "browser": ("chrome", "safari", "firefox", "edge"),
    "os": ("windows", "macos", "linux", "ios", "android"),
    "language": ("en", "es", "fr", "de", "pt", "zh", "ja"),
    "method": ("credit_card", "debit_card", "paypal", "bank_transfer", "cash"),
    "role": ("admin", "editor", "viewer"),
    "region": ("north", "south", "east", "west"),
    "color": ("red", "blue", "green", "black", "white"),
    "colour": ("red", "blue", "green", "black", "white"),
    "size": ("XS", "S", "M", "L", "XL"),
    "education": ("high_school", "bachelor", "master", "phd"),
    "blood": ("A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"),
    "sentiment": ("positive", "neutral", "negative"),
    "category": ("electronics", "clothing", "home", "books", "sports", "beauty", "grocery"),
    "genre": ("fiction", "non_fiction", "mystery", "science_fiction", "biography"),
    "source": ("organic", "paid_search", "social", "email", "referral"),
    "currency": ("USD", "EUR", "GBP", "JPY"),
}

_US_STATES = ("CA", "TX", "NY", "FL", "IL", "WA", "MA")
_MONEY = {
    "amount",
    "price",
    "cost",
    "salary",
    "total",
    "balance",
    "revenue",
    "fee",
    "fees",
    "income",
    "spend",
    "spent",
    "payment",
    "tax",
    "discount",
    "budget",
    "profit",
    "wage",
    "wages",
    "charge",
    "subtotal",
    "value",
    "earnings",
    "bonus",
    "refund",
    "rent",
    "premium",
    "loan",
    "debt",
    "deposit",
    "withdrawal",
    "usd",
    "eur",
    "gbp",
    "dollars",
}
_TEXT_PARAGRAPH = {"description", "review", "bio", "biography", "body", "content", "article"}
_TEXT_SENTENCE = {
    "comment",
    "comments",
    "notes",
    "note",
    "text",
    "message",
    "feedback",
    "summary",
    "remarks",
    "reason",
    "subject",
    "headline",
    "caption",
    "tweet",
    "post",
    "answer",
    "question",
    "complaint",
}
_COUNTS = {
    "count",
    "quantity",
    "qty",
    "number",
    "num",
    "units",
    "visits",
    "clicks",
    "views",
    "orders",
    "items",
    "purchases",
    "logins",
    "sessions",
    "pages",
    "likes",
    "followers",
    "stock",
    "inventory",
    "employees",
    "bedrooms",
    "bathrooms",
    "children",
    "kids",
    "attempts",
    "nights",
    "steps",
    "minutes",
    "seconds",
}
_BOOLEAN_WORDS = {
    "active",
    "verified",
    "flag",
    "enabled",
    "disabled",
    "subscribed",
    "deleted",
    "churned",
    "fraud",
    "fraudulent",
    "approved",
    "paid",
    "completed",
    "opted",
    "archived",
    "smoker",
    "married",
    "default",
    "defaulted",
    "returned",
    "vip",
    "premium_member",
    "member",
    "confirmed",
    "valid",
    "in_stock",
    "available",
    "success",
    "successful",
}
_DURATION = {"duration", "latency", "elapsed", "ms", "millis", "milliseconds", "secs", "hours"}


def _rule(name: str, words: list[str], table: str) -> Spec:
    """The column spec for a snake_case name (without `name`)."""
    last = words[-1]
    first = words[0]
    has = set(words).__contains__

    # identifiers
    if has("uuid") or has("guid"):
        return {"type": "uuid", "semantic_type": "id"}
    if name in ("id", "pk", "key") or last == "id" or name.endswith("_id") or last in ("ids",):
        return {"type": "integer", "semantic_type": "id"}
    if last in ("number", "no", "num", "code", "ref", "reference") and any(
        has(w) for w in ("account", "order", "invoice", "transaction", "reference", "serial")
    ):
        if has("account") and has("iban"):
            return _text("iban")
        return {"type": "integer", "semantic_type": "id"}
    if has("iban"):
        return _text("iban")
    if last in ("sku", "isbn", "barcode", "ean", "upc"):
        return {"type": "integer", "semantic_type": "id"}

    # time
    if has("birthday") or has("dob") or has("birthdate") or (has("birth") and not has("place")):
        return _birth_date()
    if any(has(w) for w in _DURATION) or name in ("response_time", "processing_time", "wait_time"):
        return {
            "type": "float",
            "min": 0.0,
            "max": 10_000.0,
            "distribution": "lognormal",
            "decimals": 2,
        }
    if (
        has("timestamp")
        or has("datetime")
        or has("ts")
        or has("time")
        or (last == "at" and len(words) > 1)
        or name in ("created", "updated", "modified")
    ):
        return _datetime_spec()
    if has("date") or has("day") or (last == "on" and len(words) > 1):
        return _date_spec()
    if has("year"):
        today = date.today()
        return {"type": "integer", "min": today.year - 30, "max": today.year}
    if has("month"):
        return {"type": "integer", "min": 1, "max": 12}

    # people, contact, places
    if has("email") or has("mail"):
        return _text("email")
    if has("phone") or has("mobile") or has("telephone") or has("cell") or has("fax"):
        return _text("phone")
    if (
        has("username")
        or has("login")
        or has("handle")
        or has("nickname")
        or name
        in (
            "user_name",
            "screen_name",
        )
    ):
        return _text("username")
    if has("ip") or has("ipv4"):
        return _text("ipv4")
    if has("url") or has("website") or has("homepage") or has("link") or has("uri"):
        return _text("url")
    if has("domain") or has("hostname"):
        return _text("domain")
    if name in ("first_name", "firstname", "given_name", "forename", "first"):
        return _text("first_name")
    if name in ("last_name", "lastname", "surname", "family_name", "last"):
        return _text("last_name")
    if (
        has("company")
        or has("employer")
        or has("organization")
        or has("organisation")
        or has("business")
        or has("vendor")
        or has("merchant")
        or has("supplier")
        or has("brand")
        or has("manufacturer")
        or has("bank")
    ) and not (has("type") or has("category") or has("size")):
        return _text("company")
    if has("country") and (has("code") or has("iso")):
        return _text("country_code")
    if has("country") or has("nationality") or has("nation"):
        return _text("country")
    if has("city") or has("town"):
        return _text("city")
    if has("zip") or has("zipcode") or has("postcode") or has("postal"):
        return _text("postcode")
    if has("address") or has("street"):
        return _text("street_address")
    if has("latitude") or name == "lat":
        return {"type": "float", "min": -90.0, "max": 90.0, "decimals": 6}
    if has("longitude") or name in ("lon", "lng", "long"):
        return {"type": "float", "min": -180.0, "max": 180.0, "decimals": 6}
    if has("job") or has("occupation") or has("profession") or name in ("title", "position"):
        return _text("job")
    if has("currency"):
        return _text("currency_code")

    # booleans
    if first in ("is", "has", "can", "should", "was", "did", "does", "opted") and len(words) > 1:
        return {"type": "boolean"}
    if last == "flag" or name in _BOOLEAN_WORDS:
        return {"type": "boolean"}

    # numbers
    if has("age"):
        return {"type": "integer", "min": 18, "max": 90}
    if has("credit") and has("score"):
        return {
            "type": "integer",
            "min": 300,
            "max": 850,
            "distribution": "normal",
            "mean": 680.0,
            "std": 80.0,
        }
    if has("rating") or has("stars"):
        return {"type": "integer", "min": 1, "max": 5}
    if has("score"):
        return {"type": "integer", "min": 0, "max": 100}
    if has("ratio") or has("probability"):
        return {"type": "float", "min": 0.0, "max": 1.0, "decimals": 4}
    if (
        has("percent")
        or has("battery")
        or has("humidity")
        or has("percentage")
        or has("pct")
        or has("rate")
        or has("share")
    ):
        return {"type": "float", "min": 0.0, "max": 100.0, "decimals": 2}
    if first in ("num", "number", "total", "n", "count") and any(w in _COUNTS for w in words[1:]):
        return {"type": "integer", "min": 0, "max": 1_000}
    if any(has(w) for w in _MONEY):
        high = {"salary": 250_000.0, "income": 250_000.0, "balance": 100_000.0}
        return _money(next((high[w] for w in words if w in high), 10_000.0))
    if has("height"):
        return {
            "type": "float",
            "min": 140.0,
            "max": 210.0,
            "distribution": "normal",
            "mean": 170.0,
            "std": 10.0,
            "decimals": 1,
        }
    if has("weight"):
        return {
            "type": "float",
            "min": 40.0,
            "max": 150.0,
            "distribution": "normal",
            "mean": 75.0,
            "std": 15.0,
            "decimals": 1,
        }
    if has("temperature") or has("temp"):
        return {"type": "float", "min": -20.0, "max": 45.0, "decimals": 1}
    if has("distance") or has("mileage") or has("area") or has("size_sqft") or has("sqft"):
        return {
            "type": "float",
            "min": 0.0,
            "max": 10_000.0,
            "distribution": "lognormal",
            "decimals": 1,
        }
    if any(has(w) for w in _COUNTS) or first in ("num", "number", "total", "n"):
        if has("quantity") or has("qty") or has("units"):
            return {"type": "integer", "min": 1, "max": 20}
        return {"type": "integer", "min": 0, "max": 1_000}

    # categories
    if name == "state":
        return _category(*_US_STATES)
    for word in reversed(words):
        if word in _NAMED_CATEGORIES and word != "state":
            return _category(*_NAMED_CATEGORIES[word])
    if has("status") or (has("state") and len(words) > 1):
        for word in words:
            if word in _STATUS_BY_CONTEXT:
                return _category(*_STATUS_BY_CONTEXT[word])
        context = next((w for w in table.split("_") if w.rstrip("s") in _STATUS_BY_CONTEXT), "")
        if context:
            return _category(*_STATUS_BY_CONTEXT[context.rstrip("s")])
        return _category("active", "inactive", "pending")
    if has("type") or has("kind") or has("method"):
        for word in words:
            if word in _TYPE_BY_CONTEXT:
                return _category(*_TYPE_BY_CONTEXT[word])
        if has("method"):
            return _category(*_NAMED_CATEGORIES["method"])
        context = next((w for w in table.split("_") if w.rstrip("s") in _TYPE_BY_CONTEXT), "")
        if context:
            return _category(*_TYPE_BY_CONTEXT[context.rstrip("s")])
        return _category("standard", "premium", "basic")

    # names (after company/username/file names etc.)
    if (
        has("name")
        or has("customer")
        or has("employee")
        or has("person")
        or has("owner")
        or has("author")
        or has("patient")
        or has("contact")
        or has("manager")
    ):
        if any(has(w) for w in ("product", "item", "file", "project", "team", "store", "app")):
            return _text("word")
        return _text("full_name")

    # free text
    if any(has(w) for w in _TEXT_PARAGRAPH):
        return _text("paragraph")
    if any(has(w) for w in _TEXT_SENTENCE) or has("title"):
        return _text("sentence")
    return _text("word")


def _apply_hints(spec: Spec, hints: dict[str, Any]) -> Spec:
    spec = dict(spec)
    if "categories" in hints:
        spec = {"type": "category", "categories": list(dict.fromkeys(hints["categories"]))}
    if "range" in hints and spec["type"] in ("integer", "float"):
        low, high = sorted(hints["range"])
        if spec["type"] == "integer":
            low, high = int(low), int(high)
        spec["min"], spec["max"] = low, high
        if spec.get("mean") is not None and not low <= spec["mean"] <= high:
            spec.pop("mean", None)
            spec.pop("std", None)
            spec.pop("distribution", None)
    if "nullable" in hints:
        spec["nullable"] = hints["nullable"]
    if hints.get("unique"):
        spec["unique"] = True
    if hints.get("description"):
        spec["description"] = hints["description"][:200]
    return spec


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("ses"):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _finish(columns: list[Spec], table: str, rows: int) -> list[Spec]:
    """What depends on the other columns: primary key uniqueness, email from a name column,
    foreign-key id ranges."""
    names = [column["name"] for column in columns]
    entity = _singular(table.split("_")[-1]) if table != "table" else ""
    name_column = next(
        (c["name"] for c in columns if c.get("semantic_type") == "full_name"),
        next((c["name"] for c in columns if c.get("semantic_type") == "first_name"), None),
    )
    for column in columns:
        semantic = column.get("semantic_type")
        if semantic == "id" and column["type"] == "integer":
            if column["name"] in ("id", f"{entity}_id"):
                column["unique"] = True
                column.setdefault("min", 1)
            else:
                column.setdefault("min", 1)
                column.setdefault("max", max(10, rows // 10))
        elif semantic == "id" and column["type"] == "uuid" and column["name"] == names[0]:
            column["unique"] = True
        if semantic == "email" and name_column and name_column != column["name"]:
            column["depends_on"] = name_column
    return columns


def draft_schema(prompt: str) -> TableSchema:
    """A TableSchema for a prompt such as "Generate 10k financial transactions with user ID,
    amount, currency, and timestamp". `rows` is the count the prompt names (DEFAULT_ROWS when it
    names none); `description` is the prompt.

    FieldError("prompt", …) when the prompt is empty or names no columns."""
    if prompt is None or not str(prompt).strip():
        raise FieldError("prompt", f"prompt is empty: describe the table, e.g. {EXAMPLE!r}")
    prompt = str(prompt).strip()
    head, listing = _column_text(prompt)
    rows = parse_row_count(head)
    if rows is None:
        rows = parse_row_count(prompt) if _ROWS_NOUN.search(prompt) else None
    if rows is None:
        rows = DEFAULT_ROWS
    if rows < 1:
        raise FieldError("prompt", f"the prompt asks for {rows} rows: ask for at least 1")
    table = _table_name(head)

    items = [_parse_item(item) for item in _split_top_level(_LEAD_IN.sub("", listing))]
    columns: list[Spec] = []
    seen: dict[str, int] = {}
    for parsed in items:
        if parsed is None:
            continue
        name, hints = parsed
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        spec = _apply_hints(_rule(name, name.split("_"), table), hints)
        columns.append({"name": name, **spec})
    if not columns:
        raise FieldError(
            "prompt",
            f"no columns found in the prompt: name the columns, e.g. {EXAMPLE!r}",
        )
    columns = _finish(columns, table, rows)
    data = {"name": table, "description": prompt, "rows": rows, "columns": columns}
    try:
        schema = TableSchema.parse(data)
    except SchemaError:
        # A hint that broke a column (a range on the wrong type…): draft without the hints.
        plain = [
            {"name": c["name"], **_rule(c["name"], c["name"].split("_"), table)} for c in columns
        ]
        data["columns"] = _finish(plain, table, rows)
        schema = TableSchema.parse(data)
    return schema
