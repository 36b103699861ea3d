"""The offline drafter's rule table: a snake_case column name → a column spec.

`_rule` reads a column's type, semantic type and bounds off the words of its name ("amount" →
positive float with 2 decimals, "created_at" → datetime, "status" → a category that depends on
the table); unknown names fall back to a string of words. `_apply_hints` lays what the prompt
said about a column (categories, a range, optional, unique) over the rule's spec, and `_finish`
sets what depends on the other columns (primary-key uniqueness, e-mail from a name column,
foreign-key id ranges). The vocabulary the rules use is in `drafter_words`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from synth_pipelines.core.tabular.drafter_phrases import CURRENCY_CODES, name_unit
from synth_pipelines.core.tabular.drafter_words import (
    _BOOLEAN_WORDS,
    _COUNTS,
    _DURATION,
    _MONEY,
    _NAMED_CATEGORIES,
    _STATUS_BY_CONTEXT,
    _TEXT_PARAGRAPH,
    _TEXT_SENTENCE,
    _TYPE_BY_CONTEXT,
    _US_STATES,
)

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


# (words any of which marks the code, words one of which must also be there or None, pattern)
_CODES: list[tuple[tuple[str, ...], tuple[str, ...] | None, str]] = [
    (("icd", "icd10"), None, r"[A-TV-Z][0-9]{2}(\.[0-9]{1,2})?"),
    (("diagnosis",), ("code", "codes"), r"[A-TV-Z][0-9]{2}(\.[0-9]{1,2})?"),
    (("cpt",), None, r"[0-9]{5}"),
    (("procedure",), ("code",), r"[0-9]{5}"),
    (("sku",), None, r"[A-Z]{3}-[0-9]{5}"),
    (("product", "item", "article", "part"), ("code",), r"[A-Z]{3}-[0-9]{5}"),
    (("iata", "airport"), ("code", "iata"), r"[A-Z]{3}"),
    (("flight",), ("number", "no", "code"), r"[A-Z]{2}[0-9]{3,4}"),
    (("tracking",), ("number", "no", "code", "id"), r"1Z[0-9A-Z]{16}"),
    (("isbn",), None, r"97[89][0-9]{10}"),
    (("ean", "barcode", "gtin"), None, r"[0-9]{13}"),
    (("upc",), None, r"[0-9]{12}"),
    (("vin",), None, r"[A-HJ-NPR-Z0-9]{17}"),
    (("plate", "registration"), ("plate", "number", "no"), r"[A-Z]{2}[0-9]{2} [A-Z]{3}"),
    (("mac",), ("address", "mac"), r"([0-9A-F]{2}:){5}[0-9A-F]{2}"),
    (("imei",), None, r"[0-9]{15}"),
    (("imsi",), None, r"[0-9]{15}"),
    (("iccid",), None, r"89[0-9]{17,18}"),
    (("swift", "bic"), None, r"[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?"),
    (("coupon", "promo", "voucher", "discount"), ("code",), r"[A-Z0-9]{8}"),
    (("course", "module"), ("code",), r"[A-Z]{3,4}[0-9]{3}"),
    (("booking", "pnr", "confirmation", "reservation"), ("code", "reference", "ref", "pnr"),
     r"[A-Z0-9]{6}"),
    (("ssn",), None, r"[0-9]{3}-[0-9]{2}-[0-9]{4}"),
    (("serial",), ("number", "no", "serial"), r"SN[0-9]{8}"),
    (("ticker",), None, r"[A-Z]{3,4}"),
    (("hs", "hts", "tariff"), ("code",), r"[0-9]{4}\.[0-9]{2}"),
    (("card",), ("number", "no", "pan"), r"4[0-9]{15}"),
    (("container",), ("number", "no", "id"), r"[A-Z]{4}[0-9]{7}"),
    (("wallet",), ("address",), r"0x[0-9a-f]{40}"),
    (("gift", "card"), ("code",), r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}"),
    (("isin",), None, r"[A-Z]{2}[0-9A-Z]{9}[0-9]"),
    (("npi",), None, r"[0-9]{10}"),
]  # fmt: skip


def _code_pattern(name: str, words: list[str]) -> str | None:
    present = set(words)
    for marks, needs, pattern in _CODES:
        if present & set(marks) and (needs is None or present & set(needs)):
            return pattern
    return None


_NUMBERED = (
    "account", "order", "invoice", "transaction", "reference", "policy", "claim", "member",
    "membership", "customer", "employee", "patient", "student", "ticket", "case", "contract",
    "shipment", "subscriber", "loyalty", "application", "receipt", "badge", "po", "purchase",
)  # fmt: skip
_HTTP_CODES = ("200", "201", "204", "301", "400", "401", "403", "404", "429", "500", "503")
_HTTP_WEIGHTS = [70.0, 6.0, 4.0, 2.0, 5.0, 3.0, 2.0, 4.0, 1.0, 2.0, 1.0]
_BOOLEAN_LAST = (
    "required", "recommended", "needed", "allowed", "eligible", "enabled", "detected", "late",
    "open", "opened", "flagged",
)  # fmt: skip
# Single-word past participles that are times, not yes/no flags.
_NOT_BOOLEAN_ED = {
    "created", "updated", "modified", "started", "ended", "used", "speed", "seed", "need", "feed",
    "breed", "bed", "red",
}  # fmt: skip


_COUNTED_BY = ("connected", "active", "registered", "enrolled", "new", "open", "unique", "daily")


_PHONE = ("phone", "mobile", "telephone", "cell", "fax", "contact", "whatsapp")


def _participle_flag(words: list[str]) -> bool:
    """ "certificate earned", "converted to paid": a past participle last or before a
    preposition, in a name with no unit or count ("days requested" is a number)."""
    if name_unit(words) is not None or _counted(words):
        return False
    for index, word in enumerate(words):
        if word.endswith("ed") and len(word) > 3 and word not in _NOT_BOOLEAN_ED:
            after = words[index + 1] if index + 1 < len(words) else None
            if after is None or after in ("to", "by", "in", "on", "for", "with"):
                return True
    return False


def _counted(words: list[str]) -> bool:
    return any(w in _COUNTS for w in words)


def _rule(name: str, words: list[str], table: str) -> Spec:
    """The column spec for a snake_case name (without `name`)."""
    last = words[-1]
    first = words[0]
    has = set(words).__contains__

    # codes with a shape
    code = _code_pattern(name, words)
    if code:
        return {"type": "string", "pattern": code}

    if has("status") and has("code"):
        return _category(*_HTTP_CODES, weights=_HTTP_WEIGHTS)
    if has("msisdn") or (
        last in ("number", "no") and any(has(w) for w in ("caller", "callee", "sender"))
    ):
        return _text("phone")

    # identifiers
    if has("uuid") or has("guid"):
        return {"type": "uuid", "semantic_type": "id"}
    if name in ("id", "pk", "key") or last == "id" or name.endswith("_id") or last in ("ids",):
        return {"type": "integer", "semantic_type": "id"}
    if (
        last in ("number", "no", "num", "code", "ref", "reference")
        and any(has(w) for w in _NUMBERED)
    ) or (
        last in ("number", "no", "ref", "reference")
        and len(words) > 1
        and not _counted(words[:-1])
        and not any(has(w) for w in _PHONE)
    ):
        if has("account") and has("iban"):
            return _text("iban")
        return {"type": "integer", "semantic_type": "id"}
    if has("iban"):
        return _text("iban")

    # vital signs, before "blood" (group) and "rate"
    if has("pressure") and any(has(w) for w in ("blood", "systolic", "diastolic", "bp")):
        low, high, mean, std = (40, 130, 80, 10) if has("diastolic") else (70, 200, 120, 15)
        return {"type": "integer", "min": low, "max": high, "distribution": "normal",
                "mean": float(mean), "std": float(std), "unit": "mmHg"}  # fmt: skip
    if (has("heart") and has("rate")) or has("pulse") or name in ("hr_bpm", "bpm"):
        return {"type": "integer", "min": 40, "max": 180, "distribution": "normal",
                "mean": 75.0, "std": 12.0, "unit": "bpm"}  # fmt: skip

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
    if has("date") or has("day") or (last == "on" and len(words) > 1 and not _counted(words)):
        return _date_spec()
    if last in ("start", "end", "started", "ended", "begin", "begins", "ends") and len(words) > 1:
        return _datetime_spec()
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
    if has("job") or has("occupation") or has("profession") or has("position") or name == "title":
        return _text("job")
    if has("currency"):
        return _text("currency_code")

    # booleans
    if first in ("is", "has", "can", "should", "was", "did", "does", "opted") and len(words) > 1:
        return {"type": "boolean"}
    if (
        last == "flag"
        or name in _BOOLEAN_WORDS
        or (last in _BOOLEAN_LAST and len(words) > 1 and not _counted(words))
    ):
        return {"type": "boolean"}
    if len(words) == 1 and name.endswith("ed") and len(name) > 4 and name not in _NOT_BOOLEAN_ED:
        return {"type": "boolean"}  # admitted, resolved, churned

    # numbers
    if (has("points") or has("miles")) and not has("per"):
        return {"type": "integer", "min": 0, "max": 100_000}
    if has("experience") or has("tenure") or (has("years") and not has("birth")):
        return {"type": "integer", "min": 0, "max": 40}
    if has("multiplier") or has("factor"):
        return {"type": "float", "min": 1.0, "max": 3.0, "decimals": 2}
    if has("gpa"):
        return {"type": "float", "min": 0.0, "max": 4.0, "decimals": 2}
    if has("grade") and has("level"):
        return {"type": "integer", "min": 1, "max": 12}
    if has("rate") and any(has(w) for w in ("nightly", "daily", "hourly", "weekly", "room")):
        return _money(1_000.0)
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
    if has("voltage") or has("volts") or has("volt"):
        return _unit_spec("V", words)
    if has("temperature") or has("temp"):
        return _unit_spec("fahrenheit" if has("fahrenheit") else "celsius", words)
    if has("humidity") or has("battery") or has("percent") or has("percentage") or has("pct"):
        return {"type": "float", "min": 0.0, "max": 100.0, "decimals": 2, "unit": "percent"}
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
    if has("distance") or has("mileage") or has("area") or has("size_sqft") or has("sqft"):
        return {
            "type": "float",
            "min": 0.0,
            "max": 10_000.0,
            "distribution": "lognormal",
            "decimals": 1,
        }
    if first in _COUNTED_BY and len(words) > 1 and last.endswith("s") and not last.endswith("ss"):
        return {"type": "integer", "min": 0, "max": 1_000}  # connected devices, active users
    if any(has(w) for w in _COUNTS) or first in ("num", "number", "total", "n"):
        if has("quantity") or has("qty") or has("units"):
            return {"type": "integer", "min": 1, "max": 20}
        return {"type": "integer", "min": 0, "max": 1_000}

    # categories
    if name == "subject" and any(w in table for w in ("teacher", "exam", "class", "school")):
        return _category("math", "science", "english", "history", "art")
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
    if _participle_flag(words) or (len(words) == 1 and name.endswith("able")):
        return {"type": "boolean"}  # certificate earned, converted to paid, renewable
    return _text("word")


def _unit_spec(unit: str, words: list[str]) -> Spec:
    """A float column in a plausible range for its unit: a battery's volts are 3.0 to 4.2, a
    body's temperature 35.5 to 40.5 °C."""
    has = set(words).__contains__
    body = any(has(w) for w in ("body", "patient", "fever", "oral"))
    if unit == "V":
        low, high = (3.0, 4.2) if has("battery") or has("cell") else (0.0, 24.0)
    elif unit == "celsius" and body:
        spec = _normal(35.5, 40.5, 36.8, 0.4, 1)
        spec["unit"] = unit
        return spec
    elif unit == "fahrenheit" and body:
        spec = _normal(96.0, 104.0, 98.2, 0.7, 1)
        spec["unit"] = unit
        return spec
    elif unit == "days":
        return {"type": "integer", "min": 0, "max": 365, "unit": unit}
    elif unit in _UNIT_NORMAL:
        spec = _normal(*_UNIT_NORMAL[unit])
        spec["unit"] = unit
        return spec
    else:
        low, high = _UNIT_RANGES.get(unit, (0.0, 1_000.0))
    return {"type": "float", "min": low, "max": high, "decimals": 2, "unit": unit}


def _normal(low: float, high: float, mean: float, std: float, decimals: int = 1) -> Spec:
    return {
        "type": "float",
        "min": low,
        "max": high,
        "distribution": "normal",
        "mean": mean,
        "std": std,
        "decimals": decimals,
    }


_UNIT_RANGES: dict[str, tuple[float, float]] = {
    "percent": (0.0, 100.0),
    "celsius": (-20.0, 45.0),
    "fahrenheit": (-4.0, 113.0),
    "kg": (0.1, 1_000.0),
    "g": (1.0, 1_000.0),
    "lb": (0.2, 2_000.0),
    "minutes": (0.0, 600.0),
    "seconds": (0.0, 3_600.0),
    "hours": (0.0, 24.0),
    "days": (0.0, 365.0),
    "ms": (0.0, 5_000.0),
    "km": (0.0, 1_000.0),
    "miles": (0.0, 600.0),
    "m": (0.0, 1_000.0),
    "cm": (0.0, 300.0),
    "mm": (0.0, 1_000.0),
    "kWh": (0.0, 100.0),
    "W": (0.0, 5_000.0),
    "kW": (0.0, 500.0),
    "Mbps": (1.0, 1_000.0),
    "GB": (0.0, 1_000.0),
    "MB": (0.0, 10_000.0),
    "L": (0.0, 100.0),
    "ppm": (400.0, 2_000.0),
    "rpm": (0.0, 8_000.0),
    "mph": (0.0, 80.0),
    "km/h": (0.0, 130.0),
    "dBm": (-120.0, -30.0),
    "dB": (0.0, 140.0),
    "mg": (0.5, 1_000.0),
    "mm/s": (0.0, 50.0),
    "degrees": (0.0, 90.0),
    "mL": (0.0, 1_000.0),
    "g/dL": (5.0, 20.0),
    "MHz": (1.0, 1_000.0),
    "m/s": (0.0, 50.0),
    "mg/dL": (70.0, 200.0),
    "lux": (0.0, 100_000.0),
}
_UNIT_NORMAL: dict[str, tuple[float, float, float, float, int]] = {
    "bpm": (40.0, 180.0, 75.0, 12.0, 0),
    "mmHg": (60.0, 180.0, 120.0, 15.0, 0),
    "hPa": (950.0, 1_050.0, 1_013.0, 8.0, 1),
}
_NUMERIC = ("integer", "float")
_DURATION_UNITS = ("ms", "seconds", "minutes", "hours", "days")
_TEMPORAL = ("date", "datetime")


def _name_currency(words: list[str]) -> str | None:
    for word in words:
        if word.upper() in CURRENCY_CODES:
            return word.upper()
        if word in ("dollars", "dollar"):
            return "USD"
        if word in ("euros", "euro"):
            return "EUR"
    return None


def _apply_hints(spec: Spec, hints: dict[str, Any], name: str) -> tuple[Spec, list[str]]:
    """The rule's spec with what the prompt said about the column laid over it, and the
    reasons for each hint that could not apply (a range on a text column)."""
    spec = dict(spec)
    ignored: list[str] = []
    words = name.split("_")
    if hints.get("list"):
        return _list_spec(spec, hints, words), []
    if hints.get("boolean"):
        spec = {"type": "boolean"}
    if "categories" in hints:
        spec = {"type": "category", "categories": list(dict.fromkeys(hints["categories"]))}
    textual = spec["type"] == "string" and spec.get("semantic_type") in (None, "word")
    currency = hints.get("currency") or _name_currency(words)
    unit = hints.get("unit") or (name_unit(words) if not currency else None)
    ruled_category = spec["type"] == "category" and "categories" not in hints
    if ruled_category and "range" in hints:
        spec = {"type": "integer"}  # "triage level 1-5": a number, not low/medium/high
    if currency and textual:
        spec = _money()
    elif unit and (textual or ruled_category):
        spec = _unit_spec(unit, words)
    elif hints.get("unit") in _DURATION_UNITS and spec["type"] in _TEMPORAL:
        spec = _unit_spec(unit, words)  # "resolution time in hours": a duration, not a time
    kind = spec["type"]
    if currency:
        if kind in _NUMERIC:
            spec["currency"] = currency
        elif hints.get("currency"):
            ignored.append(f"the currency {currency} applies to numbers, not a {kind} column")
    if unit:
        if kind in _NUMERIC:
            spec["unit"] = unit
        elif hints.get("unit"):
            ignored.append(f"the unit {unit} applies to numbers, not a {kind} column")
    if "range" in hints:
        low, high = sorted(hints["range"])
        if kind in _NUMERIC:
            if kind == "integer" and (low != int(low) or high != int(high)):
                spec = {"type": "float", "decimals": 2, **_keep(spec)}
                kind = "float"
            if kind == "integer":
                low, high = int(low), int(high)
            spec["min"], spec["max"] = low, high
            if spec.get("mean") is not None and not low <= spec["mean"] <= high:
                for key in ("mean", "std", "distribution"):
                    spec.pop(key, None)
            if spec.get("distribution") == "lognormal":
                spec.pop("distribution")
        elif kind in _TEMPORAL and all(1900 <= v <= 2100 and v == int(v) for v in (low, high)):
            spec["min"] = f"{int(low)}-01-01" + ("T00:00:00" if kind == "datetime" else "")
            spec["max"] = f"{int(high)}-12-31" + ("T23:59:59" if kind == "datetime" else "")
        else:
            ignored.append(f"the range {low:g} to {high:g} applies to numbers, not a {kind} column")
    for which in ("min", "max"):
        if which not in hints:
            continue
        if kind not in _NUMERIC:
            ignored.append(f"the {which} {hints[which]:g} applies to numbers, not a {kind} column")
            continue
        value = hints[which]
        spec[which] = int(value) if kind == "integer" and value == int(value) else value
        low, high = spec.get("min"), spec.get("max")
        if low is not None and high is not None and low > high:
            other = "max" if which == "min" else "min"
            spec[other] = low * 10 if which == "min" and low > 0 else None
            if spec[other] is None:
                spec.pop(other)
    if ("mean" in hints or "std" in hints) and kind in _NUMERIC:
        low, high = spec.get("min"), spec.get("max")
        mean = hints.get("mean")
        if mean is None:
            mean = (low + high) / 2 if low is not None and high is not None else 0.0
        std = hints.get("std")
        if std is None or std <= 0:
            bounded = low is not None and high is not None and high > low
            std = (high - low) / 6 if bounded else max(abs(mean) * 0.2, 1.0)
        spec.update({"distribution": "normal", "mean": float(mean), "std": float(std)})
        if low is not None and mean < low:
            spec["min"] = mean - 4 * std
        if high is not None and mean > high:
            spec["max"] = mean + 4 * std
        if kind == "integer" and isinstance(spec.get("min"), float):
            spec["min"] = int(spec["min"])
        if kind == "integer" and isinstance(spec.get("max"), float):
            spec["max"] = int(spec["max"])
    elif "mean" in hints or "std" in hints:
        ignored.append(f"a mean or spread applies to numbers, not a {kind} column")
    if hints.get("positive") and kind in _NUMERIC and (spec.get("min") or 0) <= 0:
        spec["min"] = 0.01 if kind == "float" else 1
    if "nullable" in hints:
        spec["nullable"] = hints["nullable"]
    if hints.get("unique"):
        spec["unique"] = True
    if hints.get("description"):
        spec["description"] = hints["description"][:200]
    return spec, ignored


def _list_spec(spec: Spec, hints: dict[str, Any], words: list[str]) -> Spec:
    """A string column of JSON lists ("3 to 5 products as a JSON list"): a pattern of `least`
    to `most` elements, each a value of the singular name's rule when that has a shape (a SKU
    pattern, an integer id), else a lowercase word."""
    least, most = sorted(int(v) for v in hints.get("range", (1, 5)))
    singular = [*words[:-1], _singular(words[-1])]
    element_spec = _rule("_".join(singular), singular, "")
    if element_spec.get("pattern"):
        element = f'"{element_spec["pattern"]}"'
    elif element_spec["type"] in ("integer", "float"):
        element = "[1-9][0-9]{0,4}"
    else:
        element = '"[a-z]{3,10}"'
    if most < 1:
        pattern = r"\[\]"
    elif least < 1:
        pattern = rf"\[({element}(, {element}){{0,{most - 1}}})?\]"
    else:
        pattern = rf"\[{element}(, {element}){{{least - 1},{most - 1}}}\]"
    noun = " ".join(words)
    out: Spec = {"type": "string", "pattern": pattern}
    out["description"] = f"a JSON list of {least} to {most} {noun}"
    if "nullable" in hints:
        out["nullable"] = hints["nullable"]
    return out


def _keep(spec: Spec) -> Spec:
    return {k: v for k, v in spec.items() if k not in ("type", "min", "max")}


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "ches", "shes", "xes")):
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
        if semantic == "id" and column["type"] == "integer" and column.get("group_size"):
            continue  # ids in runs: they grow with the rows
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
