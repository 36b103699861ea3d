"""The persona pages over HTTP without a browser, on SQLite and PostgreSQL: the consent form
(its hash as the API records it), uploads with one result per file, training (the tiny GPT-2,
really trained by the sensor's run) and the registry, prompt → draft → approve → the released
message, the reject path, revocation behind its confirmation; another owner refused on every page
and fragment; CSRF; the upload limit."""

from __future__ import annotations

import hashlib
import html
import re

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from synth_pipelines.api.app import create_app
from synth_pipelines.core.persona.demo_export import demo_whatsapp_export
from synth_pipelines.core.security.accounts import create_api_key
from synth_pipelines.core.security.crypto import generate_master_key
from synth_pipelines.core.storage.models import Persona, PersonaSource
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import run_persona_training_in_process
from synth_pipelines.portal.personas import CONSENT_TEXT
from tests.helpers import auth
from tests.test_portal import csrf, errors, signed_in

EXPORT = demo_whatsapp_export(messages=160, seed=3)
BROKEN = b"not a chat\n" + EXPORT
CONSENT_FORM = {
    "display_name": "Ada Quill",
    "self_ids": "Ada Quill\n+44 7700 900999\n",
    "sources": ["whatsapp", "jsonl"],
    "uses": ["training", "generation"],
    "granted_by": "Ada Quill, signed form 2024-03-01",
    "text": "I, Ada Quill, agree that my chat messages may train a model of my writing style.",
    "expires_at": "2099-06-01",
}


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {
        "SYNTH_PORTAL_SECRET": "portal-test-secret",
        "SYNTH_MASTER_KEY": generate_master_key(),
        "SYNTH_PERSONA_BASE_MODEL": "tiny-test",
        "SYNTH_PERSONA_TRAIN_STEPS": "40",
        "SYNTH_PERSONA_SAMPLES": "12",
        "SYNTH_TABULAR_EMBEDDER": "hashing",
        "SYNTH_PERSONA_MAX_UPLOAD_MB": "1",
    }


@pytest.fixture
def app(settings):
    return create_app(settings)


def create_persona(client: TestClient, **changes) -> str:
    form = {**CONSENT_FORM, **changes, "csrf_token": csrf(client, "/portal/personas/new")}
    response = client.post("/portal/personas/new", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"].rsplit("/", 1)[1]


def upload(client: TestClient, pid: str, *files: tuple[str, bytes], fmt="whatsapp"):
    return client.post(
        f"/portal/personas/{pid}/sources",
        data={"csrf_token": csrf(client, f"/portal/personas/{pid}"), "format": fmt},
        files=[("files", (name, data, "text/plain")) for name, data in files],
    )


def results(page: str) -> dict[str, tuple[str, str]]:
    """file name → (accepted|rejected, details) from the upload results page."""
    found = {}
    for name, result, row in re.findall(
        r'<tr data-file="([^"]+)" data-result="(\w+)">(.*?)</tr>', page, re.S
    ):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        found[name] = (result, html.unescape(cells[-1]).strip())
    return found


def post(client: TestClient, path: str, page: str, **data) -> object:
    return client.post(path, data={"csrf_token": csrf(client, page), **data},
                       follow_redirects=False)  # fmt: skip


# Training is the cost here and it is the same on either DB (test_personas_flow trains on both);
# the pages' own reads and writes run on PostgreSQL too in the tests below.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_consent_upload_train_draft_approve_reject_and_revoke(app, settings, db) -> None:
    owner_key = create_api_key(db, "ada-owner", "owner")
    owner = signed_in(app, owner_key)
    stranger = signed_in(app, create_api_key(db, "someone-else", "owner"))
    admin = signed_in(app, create_api_key(db, "root", "admin"))

    form = owner.get("/portal/personas/new")
    assert html.escape(CONSENT_TEXT, quote=False) in form.text  # the text proposed, shown
    pid = create_persona(owner)
    page = owner.get(f"/portal/personas/{pid}")
    assert page.status_code == 200
    recorded = owner.get(f"/personas/{pid}", headers=auth(owner_key)).json()["consent"]
    digest = hashlib.sha256(CONSENT_FORM["text"].encode()).hexdigest()
    assert recorded["text_sha256"] == digest
    assert f'<code data-consent="text_sha256">{digest}</code>' in page.text
    assert 'data-consent="sources">whatsapp, jsonl<' in page.text
    assert 'data-consent="expires_at">2099-06-01 00:00:00 UTC<' in page.text
    assert 'data-training="waiting"' in page.text

    # One good and one bad file: a result for each; the bad one is not kept.
    response = upload(owner, pid, ("chat.txt", EXPORT), ("broken.txt", BROKEN))
    assert response.status_code == 200
    found = results(response.text)
    assert found["chat.txt"] == ("accepted", "160 messages, 80 of them the persona's")
    assert found["broken.txt"][0] == "rejected" and "line 1" in found["broken.txt"][1]
    with db.session() as session:
        assert session.query(PersonaSource).filter_by(persona_id=pid).count() == 1
    panel = owner.get(f"/portal/personas/{pid}/status")
    assert 'data-training="training"' in panel.text and "hx-get" in panel.text  # it polls

    with dg.instance_for_test() as instance:
        runs, _ = run_persona_training_in_process(build_definitions(settings), instance)
    assert [run.success for run in runs] == [True]
    panel = owner.get(f"/portal/personas/{pid}/status")
    assert 'data-training="ready"' in panel.text and "hx-get" not in panel.text
    assert re.search(r'<tr data-version="1">\s*<td>v1</td>\s*<td>lora</td>\s*<td>yes', panel.text)

    response = post(owner, f"/portal/personas/{pid}/drafts", f"/portal/personas/{pid}",
                    prompt="are you free friday?")  # fmt: skip
    assert response.status_code == 303
    draft_page = response.headers["location"]
    did = draft_page.rsplit("/", 1)[1]
    [pending] = owner.get(f"/personas/{pid}/drafts", headers=auth(owner_key)).json()
    assert pending["id"] == did and pending["status"] == "pending_review"
    page = owner.get(draft_page)
    assert html.escape(pending["text"]) in page.text and 'data-status="pending_review"' in page.text
    assert "Released message" not in page.text

    # Another owner: every page, fragment and form of this persona is a 404, and no text.
    for path in [f"/portal/personas/{pid}", f"/portal/personas/{pid}/status",
                 f"/portal/personas/{pid}/revoke", draft_page]:  # fmt: skip
        response = stranger.get(path)
        assert response.status_code == 404, path
        assert pending["text"] not in response.text and "are you free" not in response.text
    token = csrf(stranger, "/portal/personas")
    for path, data in [
        (f"/portal/personas/{pid}/drafts", {"prompt": "hi"}),
        (f"{draft_page}/approve", {}),
        (f"{draft_page}/reject", {}),
        (f"/portal/personas/{pid}/revoke", {"confirm": "yes"}),
    ]:
        response = stranger.post(path, data={"csrf_token": token, **data})
        assert response.status_code == 404, path
    refused = stranger.post(
        f"/portal/personas/{pid}/sources",
        data={"csrf_token": token, "format": "whatsapp"},
        files=[("files", ("chat.txt", EXPORT, "text/plain"))],
    )
    assert refused.status_code == 404
    assert pid not in stranger.get("/portal/personas").text
    # An admin sees it, and the owner's list has it.
    assert admin.get(draft_page).status_code == 200 and pid in admin.get("/portal/personas").text
    assert pid in owner.get("/portal/personas").text

    response = post(owner, f"{draft_page}/approve", draft_page)
    assert response.status_code == 303 and response.headers["location"] == draft_page
    page = owner.get(draft_page)
    released = owner.get(f"/drafts/{did}/message", headers=auth(owner_key)).json()
    assert released["text"] == pending["text"]
    assert re.search(r'id="released">' + re.escape(html.escape(released["text"])) + "<", page.text)
    assert 'data-status="approved"' in page.text and 'id="approve"' not in page.text
    assert post(owner, f"{draft_page}/reject", draft_page).status_code == 409  # reviewed

    # The reject path: never released.
    response = post(owner, f"/portal/personas/{pid}/drafts", f"/portal/personas/{pid}",
                    prompt="lunch?")  # fmt: skip
    rejected_page = response.headers["location"]
    assert post(owner, f"{rejected_page}/reject", rejected_page).status_code == 303
    page = owner.get(rejected_page)
    assert 'data-status="rejected"' in page.text and "never released" in page.text
    rid = rejected_page.rsplit("/", 1)[1]
    assert owner.get(f"/drafts/{rid}/message", headers=auth(owner_key)).status_code == 409
    messages = owner.get(f"/personas/{pid}/messages", headers=auth(owner_key)).json()
    assert [m["id"] for m in messages] == [did]

    # Revocation needs its confirmation.
    confirm = owner.get(f"/portal/personas/{pid}/revoke")
    assert confirm.status_code == 200 and 'name="confirm"' in confirm.text
    response = post(owner, f"/portal/personas/{pid}/revoke", f"/portal/personas/{pid}/revoke")
    assert response.status_code == 422 and "confirm-error" in errors(response.text)
    assert owner.get(f"/portal/personas/{pid}").status_code == 200  # still there
    response = post(owner, f"/portal/personas/{pid}/revoke", f"/portal/personas/{pid}/revoke",
                    confirm="yes")  # fmt: skip
    assert response.status_code == 303
    with db.session() as session:
        assert session.get(Persona, pid).status == "revoked"
    for path in [f"/portal/personas/{pid}", f"/portal/personas/{pid}/status", draft_page]:
        response = owner.get(path)
        assert response.status_code == 410, path
        assert "consent was revoked" in response.text and released["text"] not in response.text
    assert pid not in owner.get("/portal/personas").text


def test_another_owner_is_refused_every_page_and_form_of_a_persona(app, db) -> None:
    owner = signed_in(app, create_api_key(db, "ada", "owner"))
    stranger = signed_in(app, create_api_key(db, "bob", "owner"))
    pid = create_persona(owner)
    assert upload(owner, pid, ("chat.txt", EXPORT)).status_code == 200
    for path in ["", "/status", "/revoke", "/drafts/0123456789abcdef0123456789abcdef"]:
        response = stranger.get(f"/portal/personas/{pid}{path}")
        assert response.status_code == 404, path
        assert "Ada Quill" not in response.text and "does not exist" in response.text
    token = csrf(stranger, "/portal/personas")
    for path, data in [("/drafts", {"prompt": "hi"}), ("/revoke", {"confirm": "yes"})]:
        response = stranger.post(
            f"/portal/personas/{pid}{path}", data={"csrf_token": token, **data}
        )
        assert response.status_code == 404, path
    response = stranger.post(
        f"/portal/personas/{pid}/sources",
        data={"csrf_token": token, "format": "whatsapp"},
        files=[("files", ("chat.txt", EXPORT, "text/plain"))],
    )
    assert response.status_code == 404
    assert "Ada Quill" not in stranger.get("/portal/personas").text
    assert "Ada Quill" in owner.get("/portal/personas").text
    with db.session() as session:
        assert session.get(Persona, pid).status == "active"
        assert session.query(PersonaSource).count() == 1


def test_the_consent_form_shows_the_apis_messages_beside_the_fields(app, db) -> None:
    client = signed_in(app, create_api_key(db, "ada", "owner"))
    for change, field in [
        ({"expires_at": "2020-01-01"}, "consent-expires_at-error"),
        ({"sources": []}, "consent-sources-error"),
        ({"self_ids": ""}, "self_ids-error"),
        ({"granted_by": " "}, "consent-granted_by-error"),
    ]:
        data = {**CONSENT_FORM, **change, "csrf_token": csrf(client, "/portal/personas/new")}
        response = client.post("/portal/personas/new", data=data)
        assert response.status_code == 422, change
        body = {**CONSENT_FORM, **change}
        api = client.post(
            "/personas",
            json={
                "display_name": body["display_name"],
                "self_ids": [s for s in body["self_ids"].splitlines() if s],
                "consent": {k: body[k] for k in ("sources", "uses", "granted_by", "text")}
                | {"expires_at": body["expires_at"]},
            },
            headers=auth(create_api_key(db, "api-user", "owner")),
        )
        assert api.status_code == 422
        assert errors(response.text) == {field: api.json()["detail"]}, change
        assert 'value="Ada Quill"' in response.text  # what was typed is kept
    with db.session() as session:
        assert session.query(Persona).count() == 0


# Serving builds the tiny base model before core refuses the draft (a minute on a busy machine):
# once, on SQLite.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_draft_without_a_trained_adapter_says_why_beside_the_prompt(app, db) -> None:
    client = signed_in(app, create_api_key(db, "ada", "owner"))
    pid = create_persona(client)
    response = post(client, f"/portal/personas/{pid}/drafts", f"/portal/personas/{pid}",
                    prompt="hi there")  # fmt: skip
    assert response.status_code == 409
    assert errors(response.text) == {
        "prompt-error": f"persona {pid} has no adapter that passed its checks yet: upload a "
        "source and train one"
    }
    assert ">hi there</textarea>" in response.text
    response = post(client, f"/portal/personas/{pid}/drafts", f"/portal/personas/{pid}",
                    prompt="   ")  # fmt: skip
    assert response.status_code == 422 and errors(response.text) == {
        "prompt-error": "prompt is empty"
    }


def test_a_post_without_the_csrf_token_is_refused_and_stores_nothing(app, db) -> None:
    client = signed_in(app, create_api_key(db, "ada", "owner"))
    response = client.post("/portal/personas/new", data=CONSENT_FORM)
    assert response.status_code == 403 and "CSRF token" in response.text
    pid = create_persona(client)
    response = client.post(
        f"/portal/personas/{pid}/sources",
        data={"format": "whatsapp", "csrf_token": "forged"},
        files=[("files", ("chat.txt", EXPORT, "text/plain"))],
    )
    assert response.status_code == 403
    response = client.post(f"/portal/personas/{pid}/revoke", data={"confirm": "yes"})
    assert response.status_code == 403
    with db.session() as session:
        assert session.query(Persona).count() == 1
        assert session.get(Persona, pid).status == "active"
        assert session.query(PersonaSource).count() == 0


def test_an_upload_over_the_apis_limit_is_refused_before_it_is_read(app, db) -> None:
    client = signed_in(app, create_api_key(db, "ada", "owner"))
    pid = create_persona(client)
    big = EXPORT * (2 * 2**20 // len(EXPORT) + 1)  # over SYNTH_PERSONA_MAX_UPLOAD_MB=1
    response = upload(client, pid, ("big.txt", big))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "over the files limit of 1,048,576 (SYNTH_PERSONA_MAX_UPLOAD_MB)" in response.text
    # Under the limit in all, but no file may be bigger than one API upload either.
    response = upload(client, pid, ("chat.txt", EXPORT), ("empty.txt", b""))
    assert results(response.text)["empty.txt"] == ("rejected", "the uploaded file is empty")
    with db.session() as session:
        assert session.query(PersonaSource).count() == 1
