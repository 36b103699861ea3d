"""Export parsers of the persona adapters: WhatsApp, SMS Backup & Restore XML, mbox, JSONL,
and the (context, reply) pairs built from their messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from synth_pipelines.core.persona.messages import EXPORT_FORMATS, ExportFormatError, Message
from synth_pipelines.core.persona.parsers import (
    ConversationPair,
    conversation_pairs,
    parse_export,
)

NNBSP = "\u202f"  # narrow no-break space phones write before AM/PM
LRM = "\u200e"


def texts(export) -> list[tuple[str, str, bool]]:
    return [(m.sender, m.text, m.from_persona) for m in export.messages]


def assert_export_error(data: bytes, fmt: str, line: int | None, message: str) -> None:
    with pytest.raises(ExportFormatError) as caught:
        parse_export(data, fmt, ["Jane"])
    assert caught.value.line == line
    assert message in str(caught.value)
    if line is not None:
        assert str(caught.value).startswith(f"line {line}: ")


# --- WhatsApp -------------------------------------------------------------------------------

IOS_12H = (
    f"\ufeff[3/12/24, 2:05:31{NNBSP}PM] Trip: {LRM}Messages and calls are end-to-end encrypted. "
    "No one outside of this chat, not even WhatsApp, can read or listen to them.\n"
    f"[3/12/24, 2:05:40{NNBSP}PM] Trip: {LRM}Alice added Bob\n"
    f"[3/12/24, 2:06:00{NNBSP}PM] Alice: Are we still on for Friday?\n"
    f"[3/12/24, 2:07:12{NNBSP}PM] Bob: {LRM}image omitted\n"
    f"[3/12/24, 2:07:30{NNBSP}PM] Bob: Yes! Booked the table\n"
    "for 7\n"
    f"{LRM}[3/12/24, 2:08:00{NNBSP}PM] Alice: {LRM}<attached: 00000012-PHOTO-2024-03-12.jpg>\n"
    f"[3/12/24, 11:59:59{NNBSP}PM] Alice: great, thanks {LRM}<This message was edited>\n"
    f"[3/13/24, 12:00:01{NNBSP}AM] Bob: \U0001f44d\n"
)

ANDROID_24H = (
    "13/03/2024, 09:15 - Messages and calls are end-to-end encrypted. No one outside of this "
    "chat, not even WhatsApp, can read or listen to them. Tap to learn more.\n"
    '13/03/2024, 09:15 - You created group "Trip: Rome"\n'
    "13/03/2024, 09:16 - Alice added Bob\n"
    "13/03/2024, 09:17 - Alice: Flights are booked\n"
    "Landing 14:05 - Fiumicino\n"
    "\n"
    "13/03/2024, 09:18 - Bob: <Media omitted>\n"
    "13/03/2024, 09:19 - Bob: IMG-20240313-WA0001.jpg (file attached)\n"
    "Our hotel\n"
    "13/03/2024, 09:20 - Bob: This message was deleted\n"
    "14/03/2024, 18:00 - Alice: See you at the gate <This message was edited>\n"
    "14/03/2024, 18:01 - Bob left\n"
)


def test_whatsapp_ios_12_hour_with_narrow_no_break_spaces() -> None:
    export = parse_export(IOS_12H.encode(), "whatsapp", ["alice"])

    assert export.format == "whatsapp"
    assert texts(export) == [
        ("Alice", "Are we still on for Friday?", True),
        ("Bob", "Yes! Booked the table\nfor 7", False),
        ("Alice", "great, thanks", True),
        ("Bob", "\U0001f44d", False),
    ]
    # 12-hour clock without a day above 12: month first; 12 AM is midnight.
    assert [m.timestamp for m in export.messages] == [
        datetime(2024, 3, 12, 14, 6, 0),
        datetime(2024, 3, 12, 14, 7, 30),
        datetime(2024, 3, 12, 23, 59, 59),
        datetime(2024, 3, 13, 0, 0, 1),
    ]
    assert {m.thread for m in export.messages} == {"whatsapp"}
    # The group's name on iOS system lines is not a participant.
    assert export.participants == ["Alice", "Bob"]


def test_whatsapp_android_24_hour_dash_style_multiline_and_system_lines() -> None:
    export = parse_export(ANDROID_24H.encode(), "whatsapp", ["Alice"])

    assert texts(export) == [
        ("Alice", "Flights are booked\nLanding 14:05 - Fiumicino", True),
        ("Bob", "Our hotel", False),
        ("Alice", "See you at the gate", True),
    ]
    assert [m.timestamp for m in export.messages] == [
        datetime(2024, 3, 13, 9, 17),
        datetime(2024, 3, 13, 9, 19),
        datetime(2024, 3, 14, 18, 0),
    ]
    assert export.participants == ["Alice", "Bob"]
    windows = parse_export(ANDROID_24H.replace("\n", "\r\n").encode(), "whatsapp", ["Alice"])
    assert windows.messages == export.messages


def test_whatsapp_24_hour_bracket_style_is_day_first_unless_the_file_says_otherwise() -> None:
    ambiguous = "[04/03/2024, 14:05:31] Alice: morning\n[05/03/2024, 09:00:00] Bob: hi\n"
    export = parse_export(ambiguous.encode(), "whatsapp", ["Alice"])
    assert [m.timestamp for m in export.messages] == [
        datetime(2024, 3, 4, 14, 5, 31),
        datetime(2024, 3, 5, 9, 0, 0),
    ]

    month_first = "[04/03/2024, 14:05:31] Alice: april\n[03/25/2024, 09:00:00] Bob: march\n"
    export = parse_export(month_first.encode(), "whatsapp", ["Alice"])
    # 25 cannot be a month: April 3rd and March 25th, sorted by time.
    assert [(m.text, m.timestamp) for m in export.messages] == [
        ("march", datetime(2024, 3, 25, 9, 0, 0)),
        ("april", datetime(2024, 4, 3, 14, 5, 31)),
    ]


def test_whatsapp_12_hour_style_is_month_first_unless_a_day_is_above_12() -> None:
    ambiguous = f"3/4/24, 2:05{NNBSP}PM - Alice: hi\n3/5/24, 9:00{NNBSP}AM - Bob: later\n"
    export = parse_export(ambiguous.encode(), "whatsapp", [])
    assert [m.timestamp for m in export.messages] == [
        datetime(2024, 3, 4, 14, 5),
        datetime(2024, 3, 5, 9, 0),
    ]

    data = "13/03/2024, 2:05 pm - Alice: hi\n02/04/2024, 10:00 am - Bob: later\n"
    export = parse_export(data.encode(), "whatsapp", [])
    assert [m.timestamp for m in export.messages] == [
        datetime(2024, 3, 13, 14, 5),
        datetime(2024, 4, 2, 10, 0),
    ]
    assert not any(m.from_persona for m in export.messages)  # no self ids: nobody is persona


def test_whatsapp_persona_recognised_by_phone_number_digits() -> None:
    data = (
        "12/03/2024, 14:05 - \u202a+44 7700 900123\u202c: on my way\n12/03/2024, 14:06 - Bob: ok\n"
    )
    export = parse_export(data.encode(), "whatsapp", ["07700 900123"])
    assert texts(export) == [("+44 7700 900123", "on my way", True), ("Bob", "ok", False)]


@pytest.mark.parametrize(
    ("data", "line", "message"),
    [
        (
            "\ufeff\nThis is not a chat\n12/03/2024, 14:05 - Alice: hi\n",
            2,
            "expected a WhatsApp message line",
        ),
        (
            "13/03/2024, 14:05 - Alice: a\n14/03/2024, 14:06 - Bob: b\n03/15/2024, 14:07 - A: c\n",
            3,
            "'03/15/2024 14:07' is not a valid day/month/year date",
        ),
        ("12/03/2024, 13:05 PM - Alice: hi\n", 1, "12-hour time '13:05' is not valid"),
        (
            "12/03/2024, 14:05 - Messages and calls are end-to-end encrypted.\n"
            "12/03/2024, 14:05 - Alice added Bob\n"
            "12/03/2024, 14:06 - Bob: <Media omitted>\n",
            None,
            "no messages found in this whatsapp export",
        ),
        ("", None, "no messages found"),
    ],
)
def test_whatsapp_errors_name_the_line(data: str, line: int | None, message: str) -> None:
    assert_export_error(data.encode(), "whatsapp", line, message)


def test_whatsapp_invalid_utf8_names_line_and_column() -> None:
    data = b"12/03/2024, 14:05 - Alice: hi\n12/03/2024, 14:07 - Alice: caf\xe9\n"
    assert_export_error(
        data, "whatsapp", 2, "WhatsApp export is not valid UTF-8 (byte 0xe9 at column 31)"
    )


# --- SMS Backup & Restore XML ---------------------------------------------------------------

SMS_XML = """<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>
<!--File Created By SMS Backup & Restore v10.20.002 on 14/11/2023 09:00:00-->
<?xml-stylesheet type="text/xsl" href="sms.xsl"?>
<smses count="7" backup_set="5b2b" backup_date="1700010000000" type="full">
  <sms protocol="0" address="+1 555-010-0200" date="1700000060000" type="2"
       body="Sure, 7pm works &#55357;&#56832;" read="1" status="-1" contact_name="Bob Stone" />
  <sms protocol="0" address="+15550100200" date="1700000000000" type="1"
       body="Dinner tonight?&#10;At Luigi's" read="1" status="-1" contact_name="Bob Stone" />
  <sms protocol="0" address="+15550100200" date="1700000030000" type="3"
       body="draft never sent" contact_name="Bob Stone" />
  <sms protocol="0" address="5550100300" date="1700000100000" type="1"
       body="Your code is 1234" contact_name="(Unknown)" />
  <sms protocol="0" address="+15550100200" date="1700000110000" type="1" body=""
       contact_name="Bob Stone" />
  <mms date="1700000120000" msg_box="2" address="+15550100200" contact_name="Bob Stone"
       m_type="128" read="1">
    <parts>
      <part seq="-1" ct="application/smil" text="&lt;smil&gt;&lt;/smil&gt;" />
      <part seq="0" ct="image/jpeg" name="IMG_0001.jpg" data="/9j/4AAQSkZJRgABAQ" />
      <part seq="0" ct="text/plain" text="Here's the menu" />
    </parts>
    <addrs>
      <addr address="+15550100200" type="151" charset="106" />
      <addr address="insert-address-token" type="137" charset="106" />
    </addrs>
  </mms>
  <mms date="1700000200000" msg_box="1" address="+15550100200~+15550100400"
       contact_name="Bob Stone, Carol King" m_type="132">
    <parts><part seq="0" ct="text/plain" text="Carol here, see you there" /></parts>
    <addrs>
      <addr address="+1 555 010 0400" type="137" charset="106" />
      <addr address="+15550100200" type="151" charset="106" />
    </addrs>
  </mms>
</smses>
"""


def test_sms_xml_with_sms_and_mms() -> None:
    export = parse_export(SMS_XML.encode(), "sms_xml", ["Jane Doe", "+1 555 010 0100"])

    assert export.format == "sms_xml"
    assert [(m.thread, m.sender, m.text, m.from_persona) for m in export.messages] == [
        ("+15550100200", "Bob Stone", "Dinner tonight?\nAt Luigi's", False),
        ("+15550100200", "Jane Doe", "Sure, 7pm works \U0001f600", True),
        ("+15550100200", "Jane Doe", "Here's the menu", True),
        ("5550100300", "5550100300", "Your code is 1234", False),
        ("+15550100200~+15550100400", "Carol King", "Carol here, see you there", False),
    ]
    assert export.messages[0].timestamp == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert export.participants == ["Bob Stone", "Carol King"]


def test_sms_xml_sent_messages_are_from_me_without_self_ids() -> None:
    export = parse_export(SMS_XML.encode(), "sms_xml", [])
    assert [m.sender for m in export.messages if m.from_persona] == ["me", "me"]


@pytest.mark.parametrize(
    ("data", "line", "message"),
    [
        (
            '<?xml version="1.0"?>\n<smses count="1">\n  <sms address="1" date="1" type="1"\n'
            '       body="unclosed />\n</smses>\n',
            5,
            "malformed XML",
        ),
        (
            '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
            ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
            '<smses><sms address="1" date="1" type="1" body="&lol2;" /></smses>\n',
            2,
            "DOCTYPE declarations are not allowed",
        ),
        (
            '<?xml version="1.0"?>\n\n<threads><sms date="1" /></threads>\n',
            3,
            "expected an SMS Backup & Restore export with an <smses> root, found <threads>",
        ),
        (
            '<smses count="2">\n<sms address="1" date="1700000000000" type="1" body="a" />\n'
            '<sms address="1" date="yesterday" type="1" body="b" />\n</smses>\n',
            3,
            "<sms> date 'yesterday' is not a time in epoch milliseconds",
        ),
        (
            '<smses count="1">\n<sms address="1" date="1700000000000" type="1" body="" />\n'
            "</smses>\n",
            None,
            "no messages found in this sms_xml export",
        ),
    ],
)
def test_sms_xml_errors_name_the_line(data: str, line: int | None, message: str) -> None:
    assert_export_error(data.encode(), "sms_xml", line, message)


def test_sms_xml_invalid_utf8_names_the_line() -> None:
    data = b'<smses count="1">\n\n<sms address="1" date="1" type="1" body="caf\xe9" />\n</smses>'
    assert_export_error(data, "sms_xml", 3, "malformed XML: not well-formed (invalid token)")


# --- mbox -----------------------------------------------------------------------------------

MBOX_UTF8 = """From bob@example.com Mon Mar 11 09:00:00 2024
From: Bob Stone <bob@example.com>
To: Jane Doe <jane@example.com>
Subject: Dinner on Friday?
Date: Mon, 11 Mar 2024 09:00:00 +0000
Message-ID: <m1@example.com>
Content-Type: text/plain; charset=utf-8

Are you free on Friday? Luigi's café at 7.

-- 
Bob Stone
Stone & Co.

From jane@example.com Mon Mar 11 10:00:00 2024
From: "Jane Doe" <JANE@example.com>
To: Bob Stone <bob@example.com>
Cc: Carol King <carol@example.com>
Subject: RE: Re: Dinner   on Friday?
Date: Mon, 11 Mar 2024 10:00:00 +0000
Message-ID: <m2@example.com>
In-Reply-To: <m1@example.com>
References: <m1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Friday works, see you at 7!

On Mon, Mar 11, 2024 at 9:00 AM Bob Stone <bob@example.com>
wrote:
> Are you free on Friday? Luigi's caf=C3=A9 at 7.
>
> --=20
> Bob Stone
--alt
Content-Type: text/html; charset=utf-8

<p>Friday works, see you at 7!</p>
--alt--
--outer
Content-Type: text/plain; charset=utf-8
Content-Disposition: attachment; filename="notes.txt"

attachment text that must not appear
--outer--

"""

MBOX_LATIN1 = """From rene@example.fr Tue Mar 12 08:30:00 2024
From: =?iso-8859-1?q?Ren=E9_Dupont?= <rene@example.fr>
To: jane@example.com
Subject: =?iso-8859-1?q?R=E9union?=
Date: Tue, 12 Mar 2024 08:30:00 +0100
Message-ID: <m3@example.fr>
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

Ça va? La réunion est à 9h.
Le 11 mars, Jane a écrit :
> une citation

"""


def test_mbox_multipart_quoted_reply_signature_and_latin1() -> None:
    data = MBOX_UTF8.encode("utf-8") + MBOX_LATIN1.encode("latin-1")
    export = parse_export(data, "mbox", ["Jane Doe <jane@example.com>"])

    assert export.format == "mbox"
    assert [(m.thread, m.sender, m.text, m.from_persona) for m in export.messages] == [
        ("Dinner on Friday?", "Bob Stone", "Are you free on Friday? Luigi's café at 7.", False),
        ("Dinner on Friday?", "Jane Doe", "Friday works, see you at 7!", True),
        (
            "Réunion",
            "René Dupont",
            "Ça va? La réunion est à 9h.\nLe 11 mars, Jane a écrit :",
            False,
        ),
    ]
    assert export.messages[2].timestamp == datetime(
        2024, 3, 12, 8, 30, tzinfo=timezone(timedelta(hours=1))
    )
    assert export.participants == ["Bob Stone", "Jane Doe", "Carol King", "René Dupont"]


def test_mbox_reply_joins_its_references_root_thread_even_with_a_new_subject() -> None:
    data = (
        b"From a@x Mon Mar 11 09:00:00 2024\nFrom: a@x.com\nSubject: Plans\n"
        b"Message-ID: <r1@x>\n\nfirst\n\n"
        b"From jane@x Mon Mar 11 09:00:00 2024\nFrom: jane@x.com\nSubject: totally different\n"
        b"References: <r1@x>\n\nsecond\n\n"
        b"From a@x Mon Mar 11 09:00:00 2024\nFrom: a@x.com\nSubject: Re: Lost root\n"
        b"References: <unknown@x>\n\nthird\n"
    )
    export = parse_export(data, "mbox", ["JANE@X.COM"])
    assert [(m.thread, m.sender, m.text, m.from_persona) for m in export.messages] == [
        ("Plans", "a@x.com", "first", False),
        ("Plans", "jane@x.com", "second", True),
        ("Lost root", "a@x.com", "third", False),
    ]
    assert export.messages[0].timestamp is None  # no Date header
    assert export.participants == []  # no display names anywhere


@pytest.mark.parametrize(
    ("data", "line", "message"),
    [
        (b"Subject: hi\n\nbody\n", 1, "not an mbox file"),
        (
            b"From a@x Mon Mar 11 09:00:00 2024\nFrom: a@x.com\nSubject: caf\xe9\n\nbody\n",
            3,
            "Subject header is not valid UTF-8 and declares no charset",
        ),
        (
            b"From a@x Mon Mar 11 09:00:00 2024\nFrom: a@x.com\n\nfine\n\n"
            b"From a@x Mon Mar 11 09:00:00 2024\nFrom: a@x.com\n"
            b"Content-Type: text/plain; charset=utf-8\n\ncaf\xe9\n",
            6,
            "text part that is not valid utf-8",
        ),
        (
            b"From a@x Mon Mar 11 09:00:00 2024\nFrom: a@x.com\n"
            b"Content-Type: text/plain; charset=x-klingon\n\nqapla\n",
            1,
            "unknown charset 'x-klingon'",
        ),
        (
            b"From a@x Mon Mar 11 09:00:00 2024\nFrom: a@x.com\nContent-Type: text/html\n\n"
            b"<p>only html</p>\n",
            None,
            "no messages found in this mbox export",
        ),
    ],
)
def test_mbox_errors_name_the_line(data: bytes, line: int | None, message: str) -> None:
    assert_export_error(data, "mbox", line, message)


# --- JSONL ----------------------------------------------------------------------------------

JSONL = """{"sender": "Bob", "text": "Dinner?", "timestamp": 1700000000, "thread": "bob"}

{"sender": "Jane", "text": "Sure!", "timestamp": "2023-11-14T22:14:20+00:00", "thread": "bob"}
{"sender": "Jane", "text": "   ", "thread": "bob"}
{"sender": "Carol", "text": "Hi Jane", "timestamp": null}
{"sender": "jane", "text": "Hey Carol"}
{"sender": "Bob", "text": "Earlier message", "timestamp": "1699999000.5", "thread": "bob"}
"""


def test_jsonl_with_epoch_and_iso_timestamps() -> None:
    export = parse_export(JSONL.encode(), "jsonl", ["JANE"])

    assert export.format == "jsonl"
    assert [(m.thread, m.sender, m.text, m.from_persona) for m in export.messages] == [
        ("bob", "Bob", "Earlier message", False),
        ("bob", "Bob", "Dinner?", False),
        ("bob", "Jane", "Sure!", True),
        ("default", "Carol", "Hi Jane", False),
        ("default", "jane", "Hey Carol", True),
    ]
    assert [m.timestamp for m in export.messages] == [
        datetime(2023, 11, 14, 21, 56, 40, 500000, tzinfo=UTC),
        datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
        datetime(2023, 11, 14, 22, 14, 20, tzinfo=UTC),
        None,
        None,
    ]
    assert export.participants == ["Bob", "Jane", "Carol", "jane"]


def test_messages_without_timestamp_stay_after_the_message_before_them() -> None:
    data = (
        '{"sender": "A", "text": "ten", "timestamp": 10}\n'
        '{"sender": "B", "text": "untimed", "timestamp": null}\n'
        '{"sender": "C", "text": "five", "timestamp": 5}\n'
    )
    export = parse_export(data.encode(), "jsonl", [])
    assert [m.text for m in export.messages] == ["five", "ten", "untimed"]


def test_persona_matching_by_name_phone_and_email() -> None:
    data = (
        '{"sender": "  JANE   doe ", "text": "name"}\n'
        '{"sender": "+1 (555) 010-0100", "text": "phone"}\n'
        '{"sender": "J. <Jane@Example.com>", "text": "email"}\n'
        '{"sender": "Janet", "text": "someone else"}\n'
        '{"sender": "+1 (555) 010-0199", "text": "other number"}\n'
    )
    export = parse_export(data.encode(), "jsonl", ["Jane Doe", "5550100100", "jane@example.com"])
    assert [m.from_persona for m in export.messages] == [True, True, True, False, False]


@pytest.mark.parametrize(
    ("line2", "message"),
    [
        ('{"sender": "Bob", "text": "hi"', "invalid JSON: Expecting ',' delimiter (column 31)"),
        ('["Bob", "hi"]', "expected a JSON object, got array"),
        ('{"text": "hi"}', "field 'sender' is missing or null"),
        ('{"sender": null, "text": "hi"}', "field 'sender' is missing or null"),
        ('{"sender": "Bob", "text": 5}', "field 'text' must be a string, got number"),
        ('{"sender": "Bob", "text": "hi", "thread": 3}', "field 'thread' must be a string"),
        (
            '{"sender": "Bob", "text": "hi", "timestamp": "yesterday"}',
            "field 'timestamp' 'yesterday' is neither ISO 8601 nor epoch seconds",
        ),
        (
            '{"sender": "Bob", "text": "hi", "timestamp": 1700000000000}',
            "out of range for epoch seconds (milliseconds? divide by 1000)",
        ),
        (
            '{"sender": "Bob", "text": "hi", "timestamp": true}',
            "field 'timestamp' must be an ISO 8601 string or epoch seconds, got boolean",
        ),
        ('{"sender": "Bob", "text": "\\ud83d"}', "field 'text' holds an unpaired surrogate"),
    ],
)
def test_jsonl_errors_name_line_and_field(line2: str, message: str) -> None:
    data = '{"sender": "Ann", "text": "ok"}\n' + line2 + "\n"
    assert_export_error(data.encode(), "jsonl", 2, message)


def test_jsonl_invalid_utf8_and_empty_exports() -> None:
    data = b'{"sender": "Ann", "text": "ok"}\n\n{"sender": "Bob", "text": "caf\xe9"}\n'
    assert_export_error(data, "jsonl", 3, "JSONL export is not valid UTF-8 (byte 0xe9")
    assert_export_error(b"\n\n", "jsonl", None, "no messages found in this jsonl export")


# --- common ---------------------------------------------------------------------------------


def test_unknown_format_names_the_allowed_ones() -> None:
    assert_export_error(
        b"{}", "telegram", None, "'telegram' is not one of: " + ", ".join(EXPORT_FORMATS)
    )


def test_self_ids_must_be_a_collection_not_one_string() -> None:
    with pytest.raises(TypeError, match="self_ids must be a list"):
        parse_export(JSONL.encode(), "jsonl", "Jane")


def test_export_without_persona_messages_is_returned() -> None:
    export = parse_export(JSONL.encode(), "jsonl", ["Nobody"])
    assert len(export.messages) == 5
    assert not any(m.from_persona for m in export.messages)
    assert conversation_pairs(export.messages) == []


# --- conversation pairs ---------------------------------------------------------------------

T0 = datetime(2024, 3, 12, 14, 0)


def msg(sender: str, text: str, minute: int | None, thread: str = "t") -> Message:
    timestamp = None if minute is None else T0 + timedelta(minutes=minute)
    return Message(sender, text, timestamp, thread, from_persona=sender == "Jane")


def test_pairs_merge_persona_bursts_and_keep_earlier_persona_turns_as_context() -> None:
    messages = [
        msg("Jane", "hey", 0),
        msg("Bob", "hi", 1),
        msg("Bob", "what's up?", 2),
        msg("Jane", "not much", 3),
        msg("Jane", "you?", 5),
        msg("Jane", "(much later)", 30),
    ]
    pairs = conversation_pairs(messages, context_turns=4)

    assert pairs[0] == ConversationPair(context=(), target=messages[0])
    assert pairs[1].target_text == "not much\nyou?"
    assert pairs[1].target.timestamp == T0 + timedelta(minutes=3)
    assert pairs[1].context == (messages[0], messages[1], messages[2])
    assert pairs[1].prompt_text() == "Jane: hey\nBob: hi\nBob: what's up?"
    # 25 minutes after the burst: a turn of its own, with the merged burst as context.
    assert pairs[2].target == messages[5]
    assert [m.text for m in pairs[2].context] == ["hey", "hi", "what's up?", "not much\nyou?"]
    assert len(pairs) == 3


def test_pairs_context_is_limited_and_threads_do_not_mix() -> None:
    messages = [
        msg("Bob", "b1", 0, "bob"),
        msg("Carol", "c1", 1, "carol"),
        msg("Bob", "b2", 2, "bob"),
        msg("Bob", "b3", 3, "bob"),
        msg("Jane", "to carol", 4, "carol"),
        msg("Jane", "to bob", 5, "bob"),
    ]
    pairs = conversation_pairs(messages, context_turns=2)
    assert [(p.target.text, [m.text for m in p.context]) for p in pairs] == [
        ("to bob", ["b2", "b3"]),
        ("to carol", ["c1"]),
    ]
    assert [p.context for p in conversation_pairs(messages, context_turns=0)] == [(), ()]
    with pytest.raises(ValueError, match="context_turns must be 0 or more"):
        conversation_pairs(messages, context_turns=-1)


def test_pairs_merge_untimed_persona_messages_and_respect_merge_gap() -> None:
    untimed = [msg("Bob", "q", None), msg("Jane", "a1", None), msg("Jane", "a2", None)]
    assert [p.target_text for p in conversation_pairs(untimed)] == ["a1\na2"]

    timed = [msg("Bob", "q", 0), msg("Jane", "a1", 1), msg("Jane", "a2", 3)]
    pairs = conversation_pairs(timed, merge_gap=timedelta(minutes=1))
    assert [(p.target_text, len(p.context)) for p in pairs] == [("a1", 1), ("a2", 2)]


def test_pairs_from_a_parsed_whatsapp_export() -> None:
    export = parse_export(ANDROID_24H.encode(), "whatsapp", ["Alice"])
    pairs = conversation_pairs(export.messages, context_turns=1)
    assert [(p.prompt_text(), p.target_text) for p in pairs] == [
        ("", "Flights are booked\nLanding 14:05 - Fiumicino"),
        ("Bob: Our hotel", "See you at the gate"),
    ]
