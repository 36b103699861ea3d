"""The persona pipeline's corpus step and revocation on both object stores (a local directory and
moto's S3 server): tampering is caught, consent is checked before anything is read, and a purge
deletes exactly the persona's objects."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.errors import PermissionDeniedError
from synth_pipelines.core.persona.corpus import load_corpus
from synth_pipelines.core.persona.demo_export import ADDRESS, PII, demo_whatsapp_export
from synth_pipelines.core.persona.personas import ConsentGrant, create_persona, data_key
from synth_pipelines.core.persona.pipeline import corpus_step
from synth_pipelines.core.persona.revocation import revoke_consent
from synth_pipelines.core.persona.sources import add_source, list_sources
from synth_pipelines.core.security.accounts import authenticate, create_api_key
from synth_pipelines.core.security.crypto import IntegrityError, Keyring, generate_master_key
from synth_pipelines.core.storage.models import Consent, Persona
from tests.helpers import local_or_s3_store

GRANT = ConsentGrant(("whatsapp",), ("training",), "Ada Quill", text="I agree.")


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path: Path):
    return local_or_s3_store(request, tmp_path, prefix="f")


def _persona(db, store, keys):
    owner = authenticate(db, create_api_key(db, "ada", "owner"))
    persona, _ = create_persona(db, keys, owner, "Ada Quill", ["Ada Quill"], GRANT)
    add_source(db, store, keys, owner, persona.id, "whatsapp", demo_whatsapp_export(60), 10**7)
    return owner, persona


def test_corpus_is_anonymized_encrypted_and_tampering_is_caught(factory_db, store) -> None:
    keys = Keyring.from_text(generate_master_key())
    _, persona = _persona(factory_db, store, keys)
    summary = corpus_step(factory_db, store, keys, persona.id)
    assert summary.pairs > 10 and summary.pii_replaced["phone"] >= 1
    key = data_key(persona, keys)
    records, pii = load_corpus(store, key, persona.id, summary.sha256)
    text = repr(records)
    # Contacts' names, numbers, emails and the address are pseudonyms in the corpus...
    for secret in ["Bruno Kowalski", ADDRESS, *(v for pair in PII.values() for v in pair)]:
        assert secret not in text
    # ...and kept (encrypted, typed) for the leakage check.
    assert ("address", ADDRESS) in pii and ("name", "Bruno Kowalski") in pii
    assert "ngl" in text and all(turn[0] != "Ada Quill" for r in records for turn in r["context"])

    [source] = list_sources(factory_db, persona.id)
    blob = bytearray(store.get_bytes(source.object_key))
    blob[40] ^= 0x01
    store.put_bytes(source.object_key, bytes(blob))
    with pytest.raises(IntegrityError, match=f"integrity check failed for persona/{persona.id}"):
        corpus_step(factory_db, store, keys, persona.id)


def test_expired_consent_stops_the_pipeline_before_it_reads(factory_db, store) -> None:
    keys = Keyring.from_text(generate_master_key())
    _, persona = _persona(factory_db, store, keys)
    before = sorted(store.list_keys(""))
    with factory_db.session() as session:
        session.execute(
            update(Consent).where(Consent.persona_id == persona.id).values(expires_at=utcnow())
        )
    with pytest.raises(PermissionDeniedError, match="consent expired"):
        corpus_step(factory_db, store, keys, persona.id)
    assert sorted(store.list_keys("")) == before
    with factory_db.session() as session:
        assert session.get(Persona, persona.id).corpus_sha256 is None


def test_revocation_deletes_only_that_personas_objects(factory_db, store, tmp_path) -> None:
    keys = Keyring.from_text(generate_master_key())
    owner, persona = _persona(factory_db, store, keys)
    _, other = _persona(factory_db, store, keys)
    corpus_step(factory_db, store, keys, persona.id)
    mine = list(store.list_keys(f"personas/{persona.id}/"))
    theirs = sorted(store.list_keys(f"personas/{other.id}/"))
    assert len(mine) == 3 and len(theirs) == 1  # source, corpus, PII list / source

    deleted = revoke_consent(factory_db, store, owner, persona.id, tmp_path)
    assert deleted["objects"] == 3 and deleted["sources"] == 1 and deleted["consents"] == 1
    assert list(store.list_keys(f"personas/{persona.id}/")) == []
    assert sorted(store.list_keys(f"personas/{other.id}/")) == theirs
    with factory_db.session() as session:
        tombstone = session.get(Persona, persona.id)
        assert tombstone.status == "revoked" and tombstone.wrapped_key is None
        assert tombstone.display_name == "" and tombstone.self_ids == []
    # A second call (a purge cut short, retried) is harmless.
    assert revoke_consent(factory_db, store, owner, persona.id, tmp_path)["objects"] == 0
