"""A made-up WhatsApp export of a fictional person, for `synth demo`, tests and benchmarks.

"Ada Quill" writes in lowercase, says "ngl" and "lol", ends with "x"; her friends write plainly.
Contacts' phone numbers, emails and an address appear in the chat, as they do in real exports,
so anonymization has something to do. Seeded: the same arguments give the same bytes.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

PERSONA = "Ada Quill"
CONTACTS = ("Bruno Kowalski", "Chiara Russo", "Dev Patel")
PII = {
    "Bruno Kowalski": ("+44 7700 900123", "bruno.kowalski@example.org"),
    "Chiara Russo": ("+39 347 555 0199", "chiara.russo@example.net"),
    "Dev Patel": ("(415) 555-0134", "dev.patel@example.com"),
}
ADDRESS = "42 Larkspur Lane"

OPENERS = [
    "are you coming to the thing on {day}?",
    "did you see the match last night",
    "can you send me the notes from today",
    "what time should we leave tomorrow",
    "have you finished the report yet",
    "want to grab lunch this week?",
    "my train is late again",
    "how was the trip",
    "do you still have my umbrella",
    "should we book the restaurant for {day}",
]
REPLIES = [
    "ngl i completely forgot lol, {day} works tho x",
    "omg yes it was unreal lol x",
    "ngl my notes are a mess but sure, sending now x",
    "lets say 8ish? ngl earlier is better lol x",
    "almost done ngl, just the charts left lol x",
    "yesss lunch, {day}? x",
    "classic lol, text me when youre close x",
    "honestly so good, ngl i want to go back already x",
    "oops yes lol, ill bring it on {day} x",
    "yes pls, book it for 7 ngl x",
]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def demo_whatsapp_export(messages: int = 300, seed: int = 0) -> bytes:
    """A 24-hour WhatsApp export with about `messages` lines, half of them the persona's."""
    rng = random.Random(seed)
    moment = datetime(2024, 3, 1, 9, 0)
    lines: list[str] = []
    for i in range(messages // 2):
        contact = rng.choice(CONTACTS)
        phone, email = PII[contact]
        day = rng.choice(DAYS)
        k = rng.randrange(len(OPENERS))
        opener = OPENERS[k].format(day=day)
        if i % 9 == 0:
            opener += f" (call me on {phone} if easier)"
        if i % 13 == 0:
            opener += f", or email {email}"
        reply = REPLIES[k].format(day=day)
        if i % 17 == 0:
            reply += f" ngl meet at {ADDRESS}"
        moment += timedelta(minutes=rng.randrange(20, 600))
        lines.append(f"[{moment:%d/%m/%Y, %H:%M:%S}] {contact}: {opener}")
        moment += timedelta(minutes=rng.randrange(1, 4))
        lines.append(f"[{moment:%d/%m/%Y, %H:%M:%S}] {PERSONA}: {reply}")
    return ("\n".join(lines) + "\n").encode()
