"""The persona PII anonymizer, measured on a hand-labelled fixture and checked for what a persona's
owner cares about: nothing identifying survives, the same person always gets the same pseudonym,
and the text still reads like a conversation.

`pytest -s tests/test_persona_anonymize.py` prints recall per PII type.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from pathlib import Path

import pytest

from synth_pipelines.core.errors import FieldError
from synth_pipelines.core.persona.anonymize import PII_TYPES, Anonymizer, PiiSpan
from synth_pipelines.core.persona.pii_fixture import (
    FixtureReport,
    evaluate_fixture,
    load_fixture,
    parse_markup,
    recall_report,
    with_anonymizers,
)
from synth_pipelines.core.persona.pii_gazetteer import load_gazetteer
from tests.hash_seeds import stdout_per_hash_seed

FIXTURE = Path(__file__).parent / "fixtures" / "persona_pii.jsonl"
SECRET = b"persona-0001-pseudonym-secret"
OTHER_SECRET = b"persona-0002-pseudonym-secret"
MUST_FIND_ALL = ("email", "phone", "card", "iban")


@pytest.fixture(scope="module")
def report() -> FixtureReport:
    result = evaluate_fixture(FIXTURE)
    print("\n" + result.table())
    return result


def _explain(report: FixtureReport) -> str:
    misses = "\n".join(f"  missed {s.type} {s.text!r} in {t!r}" for t, s in report.misses)
    spurious = "\n".join(
        f"  spurious {s.type} {s.text!r} in {t!r}" for t, s in report.false_positives
    )
    return f"\n{report.table()}\n{misses}\n{spurious}"


def test_fixture_is_big_labelled_and_consistent():
    messages = load_fixture(FIXTURE)
    assert len(messages) >= 220
    assert sum(not m.spans for m in messages) >= 60, "need PII-free messages for precision"
    for pii_type in PII_TYPES:
        assert sum(s.type == pii_type for m in messages for s in m.spans) >= 10, pii_type
    for m in messages:
        ordered = sorted(m.spans, key=lambda s: s.start)
        for a, b in itertools.pairwise(ordered):
            assert a.end <= b.start, f"overlapping gold spans in {m.text!r}"
        for s in m.spans:
            assert s.text == s.text.strip() and s.text, f"span with edge whitespace in {m.text!r}"
    # names without any export metadata exercise the gazetteer, not just the known names
    assert sum(s.type == "name" for m in messages if not m.known_names for s in m.spans) >= 60


def test_recall_per_type_meets_targets(report: FixtureReport):
    recall = {t: row["recall"] for t, row in report.per_type.items()}
    for pii_type in MUST_FIND_ALL:
        assert recall[pii_type] == 1.0, f"{pii_type} recall below 100 %{_explain(report)}"
    assert recall["name"] >= 0.95, f"name recall below 95 %{_explain(report)}"
    for pii_type in ("url", "ip", "address"):
        assert recall[pii_type] >= 0.9, f"{pii_type} recall below 90 %{_explain(report)}"


def test_recall_report_shape():
    table = recall_report(FIXTURE)
    assert set(table) == set(PII_TYPES)
    assert all(set(row) == {"found", "total", "recall"} for row in table.values())


def test_few_false_positives(report: FixtureReport):
    assert report.clean_messages >= 60
    assert report.false_positive_rate <= 0.05, _explain(report)
    detected = sum(r["found"] for r in report.per_type.values()) + sum(report.spurious.values())
    assert sum(report.spurious.values()) <= 0.02 * detected, _explain(report)


def test_detection_is_fast_enough(report: FixtureReport):
    # The target (>= 2,000 messages/s on one core) is measured by the benchmark; this only
    # catches a detector that has become an order of magnitude slower.
    assert report.messages_per_s >= 500, report.table()


def test_anonymized_fixture_keeps_no_detected_pii_and_adds_none():
    for anonymizer, m in with_anonymizers(load_fixture(FIXTURE), SECRET):
        result = anonymizer.anonymize(m.text)
        for span in result.spans:
            pattern = r"(?<!\w)" + re.escape(span.text) + r"(?!\w)"
            assert not re.search(pattern, result.text, re.I), (span, result.text)
        # a pseudonym is never read back as PII of another type, or as more PII
        again = anonymizer.detect(result.text)
        for pii_type in PII_TYPES:
            before = sum(s.type == pii_type for s in result.spans)
            assert sum(s.type == pii_type for s in again) <= before, (m.text, result.text, again)
        assert sum(result.replacements.values()) == len(result.spans)


def test_detect_returns_sorted_non_overlapping_spans():
    text = (
        "Priya Raman <priya.raman@gmail.com>, +44 7700 900123, https://example.org/x?ip=10.0.0.1 "
        "card 4111 1111 1111 1111, IBAN DE89370400440532013000, 221 Baker Street"
    )
    spans = Anonymizer(SECRET, ["Priya Raman"]).detect(text)
    assert [s.type for s in spans] == ["name", "email", "phone", "url", "card", "iban", "address"]
    for a, b in itertools.pairwise(spans):
        assert a.end <= b.start
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_pseudonyms_consistent_per_persona_and_different_across_personas():
    samples = {
        "name": "Siobhán Gallagher",
        "email": "priya.raman88@gmail.com",
        "phone": "(415) 555-0132",
        "url": "https://github.com/priyar/dotfiles",
        "ip": "73.162.44.201",
        "card": "4242 4242 4242 4242",
        "iban": "DE89 3704 0044 0532 0130 00",
        "address": "88 Oak Lane, Evanston, IL 60201",
    }
    one, same, other = Anonymizer(SECRET), Anonymizer(SECRET), Anonymizer(OTHER_SECRET)
    differs = 0
    for pii_type, original in samples.items():
        fake = one.pseudonym(pii_type, original)
        assert fake != original
        assert fake == one.pseudonym(pii_type, original) == same.pseudonym(pii_type, original)
        differs += fake != other.pseudonym(pii_type, original)
    assert differs >= len(samples) - 1  # a hash may collide on a small pool, not on all of them


# one address in each national form the pseudonymiser writes, each with a city and a postcode
_ADDRESSES = (
    "Via Roma {n}, Firenze 50123",
    "Via Roma {n}, Firenze",
    "Hauptstraße {n}, 10115 Berlin",
    "Keizersgracht {n}, 1015 CX Amsterdam",
    "{n} rue de Rivoli, 75001 Paris",
    "Calle Mayor {n}, 28013 Madrid",
    "{n} Baker Street, London NW1 6XE",
    "{n} Oak Lane, Evanston, IL 60201",
)


def _anonymize_everything(secret: bytes, fixture: str, addresses: list[str]) -> list[str]:
    """The anonymized fixture and address samples, as one persona's anonymizers give them."""
    out = [a.anonymize(m.text).text for a, m in with_anonymizers(load_fixture(fixture), secret)]
    plain = Anonymizer(secret)
    # name words whose gender a locale's list gives both ways ("Claude", "Jean-Claude" in de_CH)
    names = ("Claude", "Jesús", "Chun", "Joaquín", "Agustín", "Han", "Lautaro", "Ciro", "Juan")
    out += [plain.pseudonym("name", n) for n in names]
    # a prefix two parts of one contact's name share: the nickname maps like one of them
    nick = Anonymizer(secret, ["Christina Christine Ruiz"])
    out.append(nick.anonymize("Chris, Christin and Christi said hi").text)
    return out + [plain.pseudonym("address", t.format(n=22)) for t in addresses]


def test_pseudonyms_are_the_same_in_every_process():
    # Each Dagster run is its own process, and set order follows PYTHONHASHSEED: Faker's it_IT
    # city list is built from a set (CI once saw "St. Peter in Ahrn" for another process's
    # "Arconate"), and so was the gazetteer's choice of gender for a name word.
    script = (
        "import json, sys\n"
        "from tests.test_persona_anonymize import _anonymize_everything\n"
        "secret, fixture, addresses = json.loads(sys.argv[1])\n"
        "print(json.dumps(_anonymize_everything(secret.encode(), fixture, addresses)))\n"
    )
    args = [SECRET.decode(), str(FIXTURE), list(_ADDRESSES)]
    outputs = stdout_per_hash_seed(script, json.dumps(args), ("1", "2", "3", "4"))
    assert len(outputs) == 1
    assert json.loads(outputs.pop()) == _anonymize_everything(SECRET, str(FIXTURE), _ADDRESSES)


@pytest.mark.parametrize("secret", [SECRET, OTHER_SECRET, b"persona-0003-pseudonym-secret"])
def test_address_pseudonyms_read_back_as_one_address(secret: bytes):
    anonymizer = Anonymizer(secret)
    for original in _ADDRESSES:
        for number in range(1, 40):  # 312 keys: cities with a name word in them come up
            text = original.format(n=number)
            assert [s.type for s in anonymizer.detect(text)] == ["address"], text
            fake = anonymizer.pseudonym("address", text)
            spans = anonymizer.detect(f"Hotel is at {fake}")
            assert [(s.type, s.text) for s in spans] == [("address", fake)], (text, fake, spans)


def test_same_person_same_pseudonym_in_every_form():
    anonymizer = Anonymizer(SECRET, ["Daniel Okafor", "Siobhán Gallagher"])
    alone = anonymizer.anonymize("hey Daniel, you coming?").text
    full = anonymizer.anonymize("Daniel Okafor shared an album").text
    lower = anonymizer.anonymize("tell daniel to bring chips").text
    nickname = anonymizer.anonymize("tell dan to bring chips").text
    first = alone.split()[1].rstrip(",")
    assert full.split()[0] == first
    assert lower.split()[1] == first.lower() == nickname.split()[1]
    # accents and case do not make another person
    a = anonymizer.anonymize("Siobhán is here").text.split()[0]
    b = anonymizer.anonymize("SIOBHAN is here").text.split()[0]
    assert a.upper() == b
    # the same phone written two ways is the same number
    assert (
        anonymizer.pseudonym("phone", "(415) 555-0132")[-4:]
        == anonymizer.pseudonym("phone", "+1 415.555.0132")[-4:]
    )


def test_name_pseudonyms_look_like_names():
    pooled = {name for pool in load_gazetteer().pools.values() for name in pool}
    anonymizer = Anonymizer(SECRET, ["Priya Raman", "Zhang Wei"])
    for original in ("Priya", "Priya Raman", "Mary-Jane O'Connor", "Kwame Mensah", "Oluwadamilare"):
        fake = anonymizer.pseudonym("name", original)
        words = fake.split()
        assert len(words) == len(original.split()), (original, fake)
        for word in words:
            assert re.fullmatch(r"[^\W\d_]+", word) and word[0].isupper(), (original, fake)
            assert word in pooled, (original, fake)
    assert anonymizer.pseudonym("name", "priya").islower()
    # after a title a lone word is a surname, the title stays
    text = anonymizer.anonymize("Dr. Okonkwo moved my appointment").text
    assert text.startswith("Dr. ") and "Okonkwo" not in text
    # a contact's pseudonym is never another contact's real name
    assert anonymizer.pseudonym("name", "Priya") not in ("Zhang", "Wei", "Raman")


def test_fake_values_come_from_reserved_ranges():
    anonymizer = Anonymizer(SECRET, default_region="US")
    assert re.fullmatch(r"\(\d{3}\) 555-01\d\d", anonymizer.pseudonym("phone", "(415) 867-5309"))
    assert re.fullmatch(r"\+44 7700 900\d{3}", anonymizer.pseudonym("phone", "+44 7911 123456"))
    french = Anonymizer(SECRET, default_region="FR").pseudonym("phone", "06 12 34 56 78")
    assert re.fullmatch(r"06 39 98 \d\d \d\d", french)
    v4 = ipaddress.ip_address(anonymizer.pseudonym("ip", "73.162.44.201"))
    documentation = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
    assert any(v4 in ipaddress.ip_network(net) for net in documentation)
    v6 = ipaddress.ip_address(anonymizer.pseudonym("ip", "2a02:8108:1e40:5c00::1"))
    assert v6 in ipaddress.ip_network("2001:db8::/32")
    assert re.fullmatch(r"[a-z.]+@example\.(com|org|net)", anonymizer.pseudonym("email", "jo@x.io"))
    assert anonymizer.pseudonym("url", "https://github.com/priyar").startswith("https://example.")
    assert re.fullmatch(
        r"XXXX XXXX XXXX \d{4}", anonymizer.pseudonym("card", "4111 1111 1111 1111")
    )
    fake_iban = anonymizer.pseudonym("iban", "DE89 3704 0044 0532 0130 00")
    assert re.fullmatch(r"DEXX XXXX XXXX XXXX XX\d\d \d\d", fake_iban)
    street = anonymizer.pseudonym("address", "742 Evergreen Terrace")
    assert [s.type for s in anonymizer.detect(street)] == ["address"], street


def test_invalid_numbers_are_not_cards_or_ibans():
    anonymizer = Anonymizer(SECRET)
    for text in (
        "card 4111 1111 1111 1112",  # Luhn fails
        "ref 1234 5678 9012 3456",  # Luhn fails
        "tracking 9400 1000 0000 0000 0000 00",
        "IBAN DE89 3704 0044 0532 0130 01",  # mod-97 fails
        "GB82 WEST 1234 5698 7654 33",
        "account FR14 2004 1010 0505 0001 3M02 607",
    ):
        assert not [s for s in anonymizer.detect(text) if s.type in ("card", "iban")], text


def test_known_names_match_whole_words_case_insensitively():
    anonymizer = Anonymizer(SECRET, ["Marcus Webb", "Will Okafor", "Bo Lima"])
    assert [s.text for s in anonymizer.detect("ask MARCUS or webb, not Marcuses")] == [
        "MARCUS",
        "webb",
    ]
    assert [s.text for s in anonymizer.detect("Will Okafor called, ask okafor")] == [
        "Will Okafor",
        "okafor",
    ]
    # a part shorter than 3 letters or that is an English word is not a name on its own
    assert anonymizer.detect("I will call bo later") == []


def test_markup_parser_gives_offsets():
    text, spans = parse_markup("ring [[name:Hannah]] on [[phone:07700 900461]]!")
    assert text == "ring Hannah on 07700 900461!"
    assert [text[s["start"] : s["end"]] for s in spans] == ["Hannah", "07700 900461"]


def test_bad_arguments_name_the_fix():
    with pytest.raises(FieldError, match="16 bytes"):
        Anonymizer(b"short")
    with pytest.raises(FieldError, match="'UK'"):
        Anonymizer(SECRET, default_region="UK")
    with pytest.raises(FieldError, match="one of"):
        Anonymizer(SECRET).pseudonym("ssn", "123-45-6789")


def test_span_is_a_value():
    span = PiiSpan("email", 0, 4, "a@bc")
    assert span == PiiSpan("email", 0, 4, "a@bc")
    with pytest.raises(AttributeError):
        span.start = 1  # type: ignore[misc]
