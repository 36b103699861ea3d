"""`synth keys`, `synth apikeys` and `synth audit verify` as a user runs them, on SQLite and
PostgreSQL."""

from __future__ import annotations

from sqlalchemy import update
from typer.testing import CliRunner

from synth_pipelines.cli import app
from synth_pipelines.core.persona.personas import ConsentGrant, create_persona, data_key
from synth_pipelines.core.security.accounts import authenticate
from synth_pipelines.core.security.crypto import Keyring
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import AuditRecord, Persona

runner = CliRunner()


def test_keys_apikeys_and_audit_verify(synth_home, database_url, monkeypatch) -> None:
    monkeypatch.setenv("SYNTH_DATABASE_URL", database_url)
    old = runner.invoke(app, ["keys", "generate"]).stdout.strip()
    new = runner.invoke(app, ["keys", "generate"]).stdout.strip()
    assert old != new and len(old) == 43

    created = runner.invoke(app, ["apikeys", "create", "ada", "--role", "owner"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    db = FactoryDatabase(database_url)
    principal = authenticate(db, token)
    assert (principal.user, principal.role) == ("ada", "owner")
    bad = runner.invoke(app, ["apikeys", "create", "ada", "--role", "root"])
    assert bad.exit_code != 0 and "role 'root' is not one of: owner, admin" in bad.output
    listed = runner.invoke(app, ["apikeys", "list"])
    assert principal.key_id in listed.stdout and token.split("_", 2)[2][:10] not in listed.stdout

    keyring = Keyring.from_text(old)
    grant = ConsentGrant(("jsonl",), ("training",), "Ada", text="I agree.")
    persona, _ = create_persona(db, keyring, principal, "Ada", ["Ada"], grant)
    before = data_key(persona, keyring)

    monkeypatch.delenv("SYNTH_MASTER_KEY", raising=False)
    missing = runner.invoke(app, ["keys", "rotate"])
    assert missing.exit_code != 0 and "SYNTH_MASTER_KEY is not set" in missing.output
    monkeypatch.setenv("SYNTH_MASTER_KEY", new)
    monkeypatch.setenv("SYNTH_MASTER_KEYS_PREVIOUS", old)
    rotated = runner.invoke(app, ["keys", "rotate"])
    assert rotated.exit_code == 0 and "re-wrapped 1 data key(s)" in rotated.output
    with db.session() as session:
        assert data_key(session.get(Persona, persona.id), Keyring.from_text(new)) == before

    intact = runner.invoke(app, ["audit", "verify"])
    assert intact.exit_code == 0 and "audit log intact" in intact.output
    with db.session() as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(actor="mallory"))
    tampered = runner.invoke(app, ["audit", "verify"])
    assert tampered.exit_code == 1
    assert "record 2" in tampered.output and "tampered" in tampered.output

    revoked = runner.invoke(app, ["apikeys", "revoke", principal.key_id])
    assert revoked.exit_code == 0
    unknown = runner.invoke(app, ["apikeys", "revoke", "f" * 32])
    assert unknown.exit_code != 0 and "does not exist" in unknown.output
    db.dispose()
