"""persona_corpus: every upload decrypted, parsed, anonymized and turned into deduplicated
(context → reply) pairs, stored encrypted. Also keeps, encrypted, the raw PII found (with its
type), which the leakage check looks for in generations.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from synth_pipelines.core.persona.anonymize import PII_TYPES, Anonymizer
from synth_pipelines.core.persona.messages import Message
from synth_pipelines.core.persona.parsers import conversation_pairs, parse_export
from synth_pipelines.core.persona.sources import persona_prefix, read_source
from synth_pipelines.core.security.crypto import decrypt, encrypt
from synth_pipelines.core.storage.models import PersonaSource
from synth_pipelines.core.storage.object_store import ObjectStore

SELF = "me"


@dataclass
class Corpus:
    """Anonymized pairs: `records` are {"context": [[sender, text], …], "target": text}."""

    records: list[dict]
    sha256: str
    stats: dict[str, int] = field(default_factory=dict)
    pii_found: dict[str, int] = field(default_factory=dict)
    pii: list[tuple[str, str]] = field(default_factory=list)  # (type, original) found

    def to_bytes(self) -> bytes:
        return corpus_bytes(self.records)


def corpus_bytes(records: Iterable[dict]) -> bytes:
    return "".join(
        json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records
    ).encode()


def pseudonym_secret(data_key: bytes) -> bytes:
    """The persona's pseudonym key: derived from its data key, so pseudonyms stay stable across
    runs, differ between personas, and die with the data key at revocation."""
    return hmac.new(data_key, b"synth:pseudonyms", hashlib.sha256).digest()


def _id_type(value: str) -> str:
    """What kind of identifier a sender or self id is: email, phone or name."""
    if "@" in value:
        return "email"
    return "phone" if sum(c.isdigit() for c in value) >= 7 else "name"


def _looks_like_name(value: str) -> bool:
    return _id_type(value) == "name"


def build_corpus(
    store: ObjectStore,
    data_key: bytes,
    self_ids: list[str],
    display_name: str,
    sources: list[PersonaSource],
    context_turns: int = 4,
) -> Corpus:
    """Parse every source, anonymize with the export's own participant names and the persona's,
    pair each persona message with the turns before it, and drop exact duplicate pairs."""
    exports = [
        parse_export(read_source(store, data_key, src), src.format, self_ids) for src in sources
    ]
    names = {display_name, *filter(_looks_like_name, self_ids)}
    for export in exports:
        names.update(export.participants)
    anonymizer = Anonymizer(pseudonym_secret(data_key), known_names=sorted(names))
    pii_found: Counter[str] = Counter()
    # Phone numbers and emails that identify the persona are PII even if no message repeats them.
    pii: set[tuple[str, str]] = {(_id_type(s), s.strip()) for s in self_ids if s.strip()}
    pii.add(("name", display_name))

    def clean(text: str) -> str:
        result = anonymizer.anonymize(text)
        for span in result.spans:
            pii_found[span.type] += 1
            pii.add((span.type, span.text))
        return result.text

    def sender(message: Message) -> str:
        if message.from_persona:
            return SELF
        pii.add((_id_type(message.sender), message.sender))
        return anonymizer.pseudonym("name", message.sender)

    records: list[dict] = []
    seen: set[str] = set()
    stats = Counter(sources=len(sources))
    for export in exports:
        stats["messages"] += len(export.messages)
        stats["persona_messages"] += sum(m.from_persona for m in export.messages)
        for pair in conversation_pairs(export.messages, context_turns=context_turns):
            record = {
                "context": [[sender(m), clean(m.text)] for m in pair.context],
                "target": clean(pair.target.text),
            }
            digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
            if digest in seen or not record["target"].strip():
                stats["duplicates"] += 1
                continue
            seen.add(digest)
            records.append(record)
    stats["pairs"] = len(records)
    return Corpus(
        records=records,
        sha256=hashlib.sha256(corpus_bytes(records)).hexdigest(),
        stats=dict(stats),
        pii_found={t: pii_found.get(t, 0) for t in PII_TYPES},
        pii=sorted(p for p in pii if len(p[1].strip()) >= 3),
    )


def corpus_keys(persona_id: str, sha256: str) -> tuple[str, str]:
    """Object keys of a corpus and of its PII strings."""
    base = f"{persona_prefix(persona_id)}corpus/{sha256}"
    return f"{base}.jsonl.enc", f"{base}.pii.enc"


def save_corpus(store: ObjectStore, data_key: bytes, persona_id: str, corpus: Corpus) -> str:
    """Encrypt and store the corpus and its PII strings; returns the corpus object key."""
    key, pii_key = corpus_keys(persona_id, corpus.sha256)
    store.put_bytes(key, encrypt(data_key, corpus.to_bytes(), f"persona/{persona_id}/{key}"))
    pii = json.dumps(corpus.pii, ensure_ascii=False).encode()
    store.put_bytes(pii_key, encrypt(data_key, pii, f"persona/{persona_id}/{pii_key}"))
    return key


def load_corpus(
    store: ObjectStore, data_key: bytes, persona_id: str, sha256: str
) -> tuple[list[dict], list[tuple[str, str]]]:
    """The stored corpus records and the (type, original) PII of corpus `sha256`."""
    key, pii_key = corpus_keys(persona_id, sha256)
    raw = decrypt(data_key, store.get_bytes(key), f"persona/{persona_id}/{key}")
    records = [json.loads(line) for line in raw.decode().splitlines() if line]
    pii = json.loads(decrypt(data_key, store.get_bytes(pii_key), f"persona/{persona_id}/{pii_key}"))
    return records, [(kind, text) for kind, text in pii]
