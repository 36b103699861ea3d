"""Persona adapters end to end, over HTTP and a real Dagster instance, on SQLite and PostgreSQL:
consent → upload (encrypted) → persona_source_sensor → corpus → dataset → adapter (tiny GPT-2,
really trained) → registry → drafts reviewed and released → revocation that leaves no text."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select

from synth_pipelines.api.app import create_app
from synth_pipelines.core.persona.demo_export import PII, demo_whatsapp_export
from synth_pipelines.core.persona.personas import data_key
from synth_pipelines.core.security import audit
from synth_pipelines.core.security.accounts import create_api_key
from synth_pipelines.core.security.crypto import (
    IntegrityError,
    decrypt,
    generate_master_key,
    keyring_from_env,
)
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import AuditRecord, Persona
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import run_persona_training_in_process
from synth_pipelines.lines.personas.sensors import PERSONA_JOB
from synth_pipelines.resources.object_store import ObjectStoreResource
from synth_pipelines.settings import Settings
from tests.helpers import auth
from tests.launchpad import launchpad_fields, step_failure

CONSENT = {
    "sources": ["whatsapp", "jsonl"],
    "uses": ["training", "generation"],
    "granted_by": "Ada Quill, signed form 2024-03-01",
    "text": "I, Ada Quill, agree that my chat messages may train a model of my writing style.",
}
EXPORT = demo_whatsapp_export(messages=160, seed=3)
# Strings of the person's own text and of their contacts' PII that must never survive revocation.
SECRETS = [
    "ngl my notes are a mess",
    "Ada Quill",
    "Bruno Kowalski",
    *(value for pair in PII.values() for value in pair),
]


@pytest.fixture
def settings_env(database_url) -> dict[str, str]:
    return {
        "SYNTH_MASTER_KEY": generate_master_key(),
        "SYNTH_PERSONA_BASE_MODEL": "tiny-test",
        "SYNTH_PERSONA_TRAIN_STEPS": "40",
        "SYNTH_PERSONA_SAMPLES": "12",
        "SYNTH_TABULAR_EMBEDDER": "hashing",
        # Both adapter methods end to end, at no extra cost: LoRA on SQLite, bottleneck on
        # PostgreSQL.
        "SYNTH_PERSONA_METHOD": "lora" if database_url.startswith("sqlite") else "bottleneck",
    }


def create_persona(client: TestClient, token: str, **consent) -> dict:
    response = client.post(
        "/personas",
        json={
            "display_name": "Ada Quill",
            "self_ids": ["Ada Quill", "+44 7700 900999"],
            "consent": {**CONSENT, **consent},
        },
        headers=auth(token),
    )
    assert response.status_code == 201, response.text
    return response.json()


def upload(client: TestClient, token: str, persona_id: str, data: bytes, fmt="whatsapp"):
    return client.post(
        f"/personas/{persona_id}/sources",
        files={"file": ("chat.txt", data, "text/plain")},
        data={"format": fmt},
        headers=auth(token),
    )


def store_of(settings: Settings):
    return ObjectStoreResource(backend="local", root=str(settings.store.root)).get_store()


def find_text(settings: Settings, db: FactoryDatabase, keys: list[bytes]) -> list[str]:
    """Every place any SECRETS string is readable: raw objects, objects decrypted with `keys`
    (as an attacker holding an old data key would try), every row of every table, and on SQLite
    the database files themselves."""
    found = []
    needles = [s.encode() for s in SECRETS]
    store = store_of(settings)
    for name in store.list_keys(""):
        raw = store.get_bytes(name)
        candidates = [raw]
        for key in keys:
            for context in _contexts(name):
                with contextlib.suppress(IntegrityError):
                    candidates.append(decrypt(key, raw, context))
        found += [f"object {name}" for c in candidates for n in needles if n in c]
    metadata = MetaData()
    metadata.reflect(db.engine)
    with db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(table.select()):
                text = repr(tuple(row))
                found += [f"table {table.name}" for s in SECRETS if s in text]
    if db.is_sqlite:
        path = Path(db.engine.url.database)
        for file in [path, Path(f"{path}-wal")]:
            if file.exists():
                data = file.read_bytes()
                found += [f"file {file.name}" for n in needles if n in data]
    return found


def _contexts(name: str) -> list[str]:
    # Objects are bound to "persona/<id>/source/<id>" or "persona/<id>/<object key>".
    parts = name.split("/")
    if len(parts) < 3:
        return []
    pid = parts[1]
    contexts = [f"persona/{pid}/{name}"]
    if parts[2] == "sources":
        contexts.append(f"persona/{pid}/source/{parts[3].removesuffix('.enc')}")
    return contexts


def test_persona_end_to_end_and_revocation_leaves_no_text(settings, db, tmp_path) -> None:
    client = TestClient(create_app(settings))
    owner = create_api_key(db, "ada-owner", "owner")
    stranger = create_api_key(db, "someone-else", "owner")
    admin = create_api_key(db, "root", "admin")
    defs = build_definitions(settings)

    assert client.post("/personas", json={}).status_code == 401
    persona = create_persona(client, owner)
    pid = persona["id"]
    assert persona["consent"]["text_sha256"] and "text" not in persona["consent"]
    assert client.get(f"/personas/{pid}", headers=auth(stranger)).status_code == 404
    assert client.get(f"/personas/{pid}", headers=auth(admin)).status_code == 200

    # A malformed export is a 422 naming the line, and nothing is kept.
    response = upload(client, owner, pid, b"not a chat\n" + EXPORT)
    assert response.status_code == 422 and "line 1" in response.json()["detail"]
    # An export format the consent does not cover is a 403 with the reason.
    response = upload(client, owner, pid, b'{"sender": "a", "text": "b"}\n', fmt="mbox")
    assert response.status_code == 403 and "'mbox'" in response.json()["detail"]
    assert list(store_of(settings).list_keys(f"personas/{pid}/")) == []

    response = upload(client, owner, pid, EXPORT)
    assert response.status_code == 201, response.text
    assert response.json()["persona_messages"] == 80
    stored = store_of(settings)
    [source_key] = stored.list_keys(f"personas/{pid}/sources/")
    # Encrypted at rest: no 16-byte run of the export is in the stored bytes. (A 3-byte word, as
    # this once checked, turns up in random ciphertext about once in a thousand runs.)
    blob = stored.get_bytes(source_key)
    assert not [i for i in range(0, len(EXPORT) - 16, 4) if EXPORT[i : i + 16] in blob]

    with dg.instance_for_test() as instance:
        runs, cursor = run_persona_training_in_process(defs, instance)
        assert [run.success for run in runs] == [True]
        assert instance.get_dynamic_partitions("personas") == [pid]
        # The run is found as the sensor daemon looks for an attempt's run (its run key, then its
        # sensor's name), so a daemon started later on this instance does not train it again.
        [found] = instance.get_runs(dg.RunsFilter(tags={"dagster/run_key": f"{pid}:1"}))
        assert found.run_id == runs[0].run_id
        assert found.tags["dagster/sensor_name"] == "persona_source_sensor"
        # Nothing new uploaded: the next tick asks for nothing.
        assert run_persona_training_in_process(defs, instance, cursor)[0] == []

        adapter_event = instance.get_latest_materialization_event(dg.AssetKey("persona_adapter"))
        meta = adapter_event.asset_materialization.metadata
        assert meta["version"].value == 1 and meta["method"].value == settings.personas.method
        assert meta["val_perplexity"].value < meta["base_val_perplexity"].value
        corpus_meta = instance.get_latest_materialization_event(
            dg.AssetKey("persona_corpus")
        ).asset_materialization.metadata
        assert corpus_meta["pairs"].value > 50
        checks = {e.check_name: e.passed for run in runs for e in run.get_asset_check_evaluations()}
        assert checks["perplexity"] and checks["pii_leakage"]
        # Materialization metadata never carries the person's text.
        events = json.dumps([str(v.value) for v in meta.values()] + [str(corpus_meta)])
        assert not [s for s in SECRETS if s in events]

        adapters = client.get(f"/personas/{pid}/adapters", headers=auth(owner)).json()
        assert [a["version"] for a in adapters] == [1]
        [registered] = adapters
        assert registered["servable"] and registered["method"] == settings.personas.method
        assert registered["consent_id"] == persona["consent"]["id"]
        assert len(registered["corpus_sha256"]) == 64
        assert registered["hyperparameters"]["max_steps"] == 40

        # Review and approve: only approved drafts are released.
        draft = client.post(
            f"/personas/{pid}/drafts", json={"prompt": "are you free friday?"}, headers=auth(owner)
        )
        assert draft.status_code == 201, draft.text
        draft = draft.json()
        assert draft["status"] == "pending_review" and isinstance(draft["text"], str)
        did = draft["id"]
        assert client.get(f"/drafts/{did}/message", headers=auth(owner)).status_code == 409
        assert client.post(f"/drafts/{did}/approve", headers=auth(stranger)).status_code == 404
        assert client.post(f"/drafts/{did}/approve", headers=auth(owner)).status_code == 200
        assert client.post(f"/drafts/{did}/reject", headers=auth(owner)).status_code == 409
        message = client.get(f"/drafts/{did}/message", headers=auth(owner)).json()
        assert message["text"] == draft["text"]
        other = client.post(
            f"/personas/{pid}/drafts", json={"prompt": "lunch?"}, headers=auth(owner)
        ).json()
        client.post(f"/drafts/{other['id']}/reject", headers=auth(admin))
        released = client.get(f"/personas/{pid}/messages", headers=auth(owner)).json()
        assert [m["id"] for m in released] == [did]

        # Before revocation the scanner finds the text (given the data key): it can fail.
        with db.session() as session:
            key = data_key(session.get(Persona, pid), keyring_from_env())
        assert find_text(settings, db, [key])

        response = client.delete(f"/personas/{pid}/consent", headers=auth(owner))
        assert response.status_code == 200, response.text
        deleted = response.json()["deleted"]
        assert deleted["objects"] >= 4 and deleted["adapters"] == 1 and deleted["drafts"] == 2

        assert find_text(settings, db, [key]) == []
        assert client.get(f"/personas/{pid}", headers=auth(owner)).status_code == 410
        response = client.post(
            f"/personas/{pid}/drafts", json={"prompt": "hi"}, headers=auth(owner)
        )
        assert response.status_code == 410
        run_persona_training_in_process(defs, instance, cursor)
        assert instance.get_dynamic_partitions("personas") == []

    result = audit.verify(db)
    assert result.ok, result.problems
    with db.session() as session:
        actions = session.scalars(
            select(AuditRecord.action).where(AuditRecord.persona_id == pid)
        ).all()
    for action in [
        "persona.created",
        "consent.granted",
        "source.uploaded",
        "corpus.built",
        "adapter.trained",
        "draft.generated",
        "draft.approved",
        "draft.rejected",
        "message.read",
        "consent.revoked",
        "persona.purged",
    ]:
        assert action in actions, action


SMS_XML = b"""<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>
<smses count="3">
  <sms protocol="0" address="+447700900123" date="1709280000000" type="1" body="lunch friday?"
       contact_name="Bruno Kowalski" />
  <sms protocol="0" address="+447700900123" date="1709280060000" type="2" body="ngl yes lol x"
       contact_name="Bruno Kowalski" />
  <sms protocol="0" address="+447700900123" date="1709280120000" type="1" body="great"
       contact_name="Bruno Kowalski" />
</smses>
"""
MBOX = b"""From ada@example.org Fri Mar  1 10:00:00 2024
From: Bruno Kowalski <bruno.kowalski@example.org>
To: Ada Quill <ada@example.org>
Subject: plans
Date: Fri, 01 Mar 2024 10:00:00 +0000

are you coming saturday?

From ada@example.org Fri Mar  1 10:05:00 2024
From: Ada Quill <ada@example.org>
To: Bruno Kowalski <bruno.kowalski@example.org>
Subject: Re: plans
Date: Fri, 01 Mar 2024 10:05:00 +0000

ngl yes, see you there x

"""
JSONL = (
    b'{"sender": "Bruno", "text": "hi", "timestamp": 1709280000}\n'
    b'{"sender": "Ada Quill", "text": "ngl hey x", "timestamp": 1709280060}\n'
)


@pytest.mark.parametrize(
    ("fmt", "data", "messages"), [("sms_xml", SMS_XML, 3), ("mbox", MBOX, 2), ("jsonl", JSONL, 2)]
)
def test_every_export_format_uploads_over_http(settings, db, fmt, data, messages) -> None:
    client = TestClient(create_app(settings))
    owner = create_api_key(db, "ada", "owner")
    response = client.post(
        "/personas",
        json={
            "display_name": "Ada Quill",
            "self_ids": ["Ada Quill", "ada@example.org"],
            "consent": {**CONSENT, "sources": [fmt]},
        },
        headers=auth(owner),
    )
    pid = response.json()["id"]
    response = upload(client, owner, pid, data, fmt=fmt)
    assert response.status_code == 201, response.text
    assert (response.json()["messages"], response.json()["persona_messages"]) == (messages, 1)
    # With a stray first line, the same file is a 422 naming it; nothing of it is kept.
    broken = upload(client, owner, pid, b"garbage\n" + data, fmt=fmt)
    assert broken.status_code == 422 and "line 1" in broken.json()["detail"], broken.text
    sources = client.get(f"/personas/{pid}", headers=auth(owner)).json()["sources"]
    assert len(sources) == 1


def test_consent_errors_over_http(settings, db) -> None:
    client = TestClient(create_app(settings))
    owner = create_api_key(db, "ada", "owner")
    body = {"display_name": "Ada", "self_ids": ["Ada"], "consent": {**CONSENT}}
    past = {**body, "consent": {**CONSENT, "expires_at": "2020-01-01T00:00:00Z"}}
    response = client.post("/personas", json=past, headers=auth(owner))
    assert response.status_code == 422 and response.json()["field"] == "consent.expires_at"
    assert "consent.expires_at must be after granted_at" in response.json()["detail"]
    # An ISO 8601 expiry in the future is read and kept.
    future = {**body, "consent": {**CONSENT, "expires_at": "2099-06-01T00:00:00Z"}}
    response = client.post("/personas", json=future, headers=auth(owner))
    assert response.status_code == 201, response.json()
    assert response.json()["consent"]["expires_at"].startswith("2099-06-01T00:00:00")
    response = client.post(
        "/personas", json={**body, "consent": {**CONSENT, "uses": ["ads"]}}, headers=auth(owner)
    )
    assert response.status_code == 422 and "ads" in response.json()["detail"]
    # Training only: generation is refused with the reason.
    pid = create_persona(client, owner, uses=["training"])["id"]
    response = client.post(f"/personas/{pid}/drafts", json={"prompt": "hi"}, headers=auth(owner))
    assert (
        response.status_code == 403 and "does not cover 'generation'" in response.json()["detail"]
    )
    response = client.post("/personas", json=body, headers={"Authorization": "Bearer sp_nope"})
    assert response.status_code == 401


def test_persona_endpoints_need_a_master_key(settings, db, monkeypatch) -> None:
    monkeypatch.delenv("SYNTH_MASTER_KEY")
    client = TestClient(create_app(settings))
    owner = create_api_key(db, "ada", "owner")
    response = client.post(
        "/personas",
        json={"display_name": "Ada", "self_ids": ["Ada"], "consent": CONSENT},
        headers=auth(owner),
    )
    assert (
        response.status_code == 503 and "SYNTH_MASTER_KEY is not set" in response.json()["detail"]
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_run_config_sets_training_steps_defaulting_to_the_environment(settings, db) -> None:
    client = TestClient(create_app(settings))
    owner = create_api_key(db, "ada-owner", "owner")
    pid = create_persona(client, owner)["id"]
    assert upload(client, owner, pid, EXPORT).status_code == 201
    defs = build_definitions(settings)
    [steps] = launchpad_fields(defs, "persona_adapter").values()
    assert steps.default_value == 40 and "SYNTH_PERSONA_TRAIN_STEPS=40" in steps.description
    job = defs.resolve_job_def(PERSONA_JOB)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("personas", [pid])

        def run(config: dict, only: list[str] | None = None) -> dg.ExecuteInProcessResult:
            return job.execute_in_process(
                partition_key=pid,
                instance=instance,
                asset_selection=[dg.AssetKey(name) for name in only] if only else None,
                run_config={"ops": {"persona_adapter": {"config": config}}},
                raise_on_error=False,
            )

        refused = run({"train_steps": 0}, only=["persona_adapter"])
        assert not refused.success
        assert "greater than or equal to 1" in step_failure(refused)
        assert run({"train_steps": 3}).success
        adapter = instance.get_latest_materialization_event(dg.AssetKey("persona_adapter"))
    assert adapter.asset_materialization.metadata["steps"].value == 3
    [registered] = client.get(f"/personas/{pid}/adapters", headers=auth(owner)).json()
    assert registered["hyperparameters"]["max_steps"] == 3
