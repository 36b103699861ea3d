"""Encryption at rest, key rotation, API keys, consent checks and the hash-chained audit log,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, update

from synth_pipelines.core.errors import (
    AuthenticationError,
    FieldError,
    InvalidInputError,
    PermissionDeniedError,
)
from synth_pipelines.core.flux.subjects import subject_context
from synth_pipelines.core.persona.personas import (
    ConsentGrant,
    create_persona,
    data_key,
    require_consent,
)
from synth_pipelines.core.security import audit
from synth_pipelines.core.security.accounts import authenticate, create_api_key, revoke_api_key
from synth_pipelines.core.security.crypto import (
    IntegrityError,
    Keyring,
    KeyUnavailableError,
    decrypt,
    encrypt,
    generate_master_key,
    new_data_key,
    parse_master_key,
)
from synth_pipelines.core.security.rotation import rotate_keys
from synth_pipelines.core.storage.models import AuditRecord, Consent, Persona, Subject

GRANT = ConsentGrant(
    sources=("whatsapp", "jsonl"),
    uses=("training",),
    granted_by="Ada Example, in person",
    text="I agree that my messages may be used to train a model of my writing style.",
)


def test_encrypt_round_trips_and_detects_every_kind_of_tampering() -> None:
    key = new_data_key()
    blob = encrypt(key, b"hello, this is private", "persona/p1/source/s1")
    assert b"private" not in blob
    assert decrypt(key, blob, "persona/p1/source/s1") == b"hello, this is private"
    flipped = bytearray(blob)
    flipped[-5] ^= 1
    for bad, context, what in [
        (bytes(flipped), "persona/p1/source/s1", "a flipped bit"),
        (blob[:-1], "persona/p1/source/s1", "truncation"),
        (blob, "persona/p2/source/s1", "another persona's context"),
    ]:
        with pytest.raises(IntegrityError, match="integrity check failed"):
            decrypt(key, bad, context)
        assert what
    with pytest.raises(IntegrityError, match="integrity check failed"):
        decrypt(new_data_key(), blob, "persona/p1/source/s1")
    with pytest.raises(IntegrityError, match="bad header"):
        decrypt(key, b"plain text", "x")


def test_master_keys_parse_from_base64_or_hex_and_reject_anything_else() -> None:
    text = generate_master_key()
    raw = parse_master_key(text)
    assert len(raw) == 32
    assert parse_master_key(raw.hex()) == raw
    for bad in ["", "short", "a" * 63]:
        with pytest.raises(InvalidInputError, match="32 random bytes"):
            parse_master_key(bad)
    with pytest.raises(KeyUnavailableError, match="SYNTH_MASTER_KEY is not set"):
        Keyring.from_text("")


def test_wrapped_keys_need_the_right_master_key_and_detect_tampering() -> None:
    ring = Keyring.from_text(generate_master_key())
    wrapped = ring.wrap(b"k" * 32, "persona/a")
    assert ring.unwrap(wrapped, "persona/a") == b"k" * 32
    with pytest.raises(IntegrityError, match="altered"):
        ring.unwrap(wrapped, "persona/b")
    other = Keyring.from_text(generate_master_key())
    with pytest.raises(KeyUnavailableError, match="neither SYNTH_MASTER_KEY"):
        other.unwrap(wrapped, "persona/a")


def test_rotation_rewraps_every_data_key_and_old_data_still_decrypts(factory_db) -> None:
    old_text, new_text = generate_master_key(), generate_master_key()
    old = Keyring.from_text(old_text)
    principal = _principal(factory_db, "ada", "owner")
    persona, _ = create_persona(factory_db, old, principal, "Ada", ["Ada"], GRANT)
    key = data_key(persona, old)
    blob = encrypt(key, b"secret words", f"persona/{persona.id}/x")

    # A Flux subject's data key is under the same master key and rotates with the personas'.
    subject_key = new_data_key()
    with factory_db.session() as session:
        subject = Subject(owner="ada", wrapped_key=old.wrap(subject_key, subject_context("s1")))
        subject.id = "s1"
        session.add(subject)

    # Mid-rotation: the new key wraps, the old one still unwraps.
    during = Keyring.from_text(new_text, old_text)
    assert rotate_keys(factory_db, during) == {"rewrapped": 2, "current": 0}
    assert rotate_keys(factory_db, during) == {"rewrapped": 0, "current": 2}
    after = Keyring.from_text(new_text)  # the old key is gone for good
    with factory_db.session() as session:
        stored = session.get(Persona, persona.id)
        assert stored.key_id == after.current_key_id
        assert decrypt(data_key(stored, after), blob, f"persona/{persona.id}/x") == b"secret words"
    with factory_db.session() as session, pytest.raises(KeyUnavailableError):
        data_key(session.get(Persona, persona.id), old)
    with factory_db.session() as session:
        wrapped = session.get(Subject, "s1").wrapped_key
        assert after.unwrap(wrapped, subject_context("s1")) == subject_key
    assert audit.verify(factory_db).ok


def _principal(db, user: str, role: str):
    return authenticate(db, create_api_key(db, user, role))


def test_api_keys_are_stored_hashed_and_checked(factory_db) -> None:
    token = create_api_key(factory_db, "ada", "owner")
    principal = authenticate(factory_db, token)
    assert (principal.user, principal.role, principal.is_admin) == ("ada", "owner", False)
    with factory_db.session() as session:
        from synth_pipelines.core.storage.models import ApiKey

        stored = session.get(ApiKey, principal.key_id)
        assert token.split("_", 2)[2] not in stored.secret_hash
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in [None, "", "nonsense", wrong, "sp_" + "0" * 32 + "_" + "x" * 43]:
        with pytest.raises(AuthenticationError):
            authenticate(factory_db, bad)
    revoke_api_key(factory_db, principal.key_id)
    with pytest.raises(AuthenticationError, match="invalid or revoked"):
        authenticate(factory_db, token)
    with pytest.raises(InvalidInputError, match="role 'root'"):
        create_api_key(factory_db, "ada", "root")


def test_consent_is_checked_for_use_source_expiry_and_revocation(factory_db) -> None:
    keys = Keyring.from_text(generate_master_key())
    principal = _principal(factory_db, "ada", "owner")
    persona, consent = create_persona(factory_db, keys, principal, "Ada", ["Ada"], GRANT)
    assert consent.text_sha256 == __import__("hashlib").sha256(GRANT.text.encode()).hexdigest()
    with factory_db.session() as session:
        assert require_consent(session, persona.id, "training", "whatsapp").id == consent.id
        with pytest.raises(PermissionDeniedError, match="does not cover 'generation'"):
            require_consent(session, persona.id, "generation")
        with pytest.raises(PermissionDeniedError, match="does not cover 'mbox' exports"):
            require_consent(session, persona.id, "training", "mbox")
    with factory_db.session() as session:
        session.execute(
            update(Consent)
            .where(Consent.id == consent.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with factory_db.session() as session, pytest.raises(PermissionDeniedError, match="expired"):
        require_consent(session, persona.id, "training")
    with factory_db.session() as session:
        session.execute(
            update(Consent).where(Consent.id == consent.id).values(revoked_at=datetime.now(UTC))
        )
    with factory_db.session() as session, pytest.raises(PermissionDeniedError, match="no consent"):
        require_consent(session, persona.id, "training")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sources": ()}, "consent.sources"),
        ({"sources": ("telegram",)}, "consent.sources"),
        ({"uses": ("marketing",)}, "consent.uses"),
        ({"text": None}, "consent.text_sha256"),
        ({"text": None, "text_sha256": "abc"}, "consent.text_sha256"),
        ({"granted_by": " "}, "consent.granted_by"),
        ({"expires_at": datetime(2020, 1, 1, tzinfo=UTC)}, "consent.expires_at"),
    ],
)
def test_bad_consent_is_refused_naming_the_field(change, field) -> None:
    from dataclasses import replace

    with pytest.raises(FieldError) as caught:
        replace(GRANT, **change).validated()
    assert caught.value.field == field


def test_audit_verify_detects_edits_deletions_and_truncation(factory_db) -> None:
    for i in range(6):
        audit.log(factory_db, f"user:{i}", "data.read", persona_id="p1", details={"n": i})
    result = audit.verify(factory_db)
    assert result.ok and result.records == 6

    with factory_db.session() as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(actor="mallory"))
    assert any("record 3" in p and "edited" in p for p in audit.verify(factory_db).problems)
    with factory_db.session() as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(actor="user:2"))
    assert audit.verify(factory_db).ok

    with factory_db.session() as session:
        session.execute(delete(AuditRecord).where(AuditRecord.seq == 4))
    problems = audit.verify(factory_db).problems
    assert any("record 4 missing" in p for p in problems)
    assert any("record 5: does not chain" in p for p in problems)


def test_audit_verify_detects_deletion_from_the_end(factory_db) -> None:
    for i in range(3):
        audit.log(factory_db, "cli", "keys.rotated", details={"i": i})
    with factory_db.session() as session:
        session.execute(delete(AuditRecord).where(AuditRecord.seq == 3))
    problems = audit.verify(factory_db).problems
    assert problems and "deleted from the end" in problems[0]
