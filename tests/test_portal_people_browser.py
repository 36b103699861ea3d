"""The persona and subject pages in a real browser (headless Chromium) against one live uvicorn
server: consent → two exports uploaded (one rejected, with the reason) → the training panel turns
ready on its own after the sensor's run (the tiny GPT-2, really trained) → a draft approved in
the browser is released → revocation behind its confirmation; a subject whose photos are
rejected shows each with its reason and thumbnail, and a refused prompt the policy's message.
Screenshots go to test-output/portal/persona-*.png and subject-*.png."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import httpx
import pytest
from PIL import Image

from synth_pipelines.api.app import create_app
from synth_pipelines.api.server import running_server
from synth_pipelines.core.persona.demo_export import demo_whatsapp_export
from synth_pipelines.core.security.accounts import create_api_key
from synth_pipelines.core.security.crypto import generate_master_key
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import run_persona_training_in_process, run_subjects_in_process
from synth_pipelines.settings import Settings
from tests.browser import headless_chromium, portal_settings, require_chromium
from tests.face_photos import subject_photos
from tests.helpers import auth
from tests.test_portal_browser import (
    _contrasts,
    _unlabelled,
    by_css,
    errors,
    shot,
    sign_in,
    type_into,
    wait_for,
)

# One worker runs the module: one live server and one browser.
pytestmark = pytest.mark.xdist_group("portal_people_browser")


@dataclass
class Portal:
    url: str
    settings: Settings
    owner_key: str


@pytest.fixture(scope="module")
def portal(tmp_path_factory) -> Iterator[Portal]:
    """The API and its portal on a free port under one temporary SYNTH_HOME, with the tiny
    persona model and the tiny Flux pipeline; an owner's API key."""
    require_chromium()
    home = tmp_path_factory.mktemp("people") / "synth_home"
    with portal_settings(
        home, SYNTH_PORTAL_SECRET="people-browser-secret", SYNTH_MASTER_KEY=generate_master_key(),
        SYNTH_PERSONA_BASE_MODEL="tiny-test", SYNTH_PERSONA_TRAIN_STEPS="40",
        SYNTH_PERSONA_SAMPLES="12", SYNTH_TABULAR_EMBEDDER="hashing",
        SYNTH_FLUX_BASE_MODEL="tiny-test",
    ) as settings:  # fmt: skip
        app = create_app(settings)
        owner_key = create_api_key(app.state.synth.db, "ada", "owner")
        with running_server(app) as url:
            yield Portal(url, settings, owner_key)


@pytest.fixture(scope="module")
def browser(portal) -> Iterator[Any]:
    with headless_chromium() as driver:
        yield driver


@pytest.fixture
def page(browser, portal) -> Any:
    browser.get(portal.url + "/portal/signin")
    browser.delete_all_cookies()
    return browser


def _rows(driver) -> dict[str, tuple[str, str]]:
    return {
        row.get_attribute("data-file"): (row.get_attribute("data-result"), row.text)
        for row in by_css(driver, "tr[data-file]")
    }


def test_a_persona_draft_approved_in_the_browser_is_released(portal, page, tmp_path) -> None:
    sign_in(page, portal, portal.owner_key, then="/portal/personas/new")
    type_into(page, "display_name", "Ada Quill")
    by_css(page, "#self_ids")[0].send_keys("Ada Quill\n+44 7700 900999")
    type_into(page, "granted_by", "Ada Quill, signed form")
    assert "writing style" in by_css(page, "#consent-text")[0].get_attribute("value")  # shown
    shot(page, "persona-consent-form")
    by_css(page, "main button[type=submit]")[0].click()
    wait_for(page, lambda d: by_css(d, "[data-consent=text_sha256]"), "no persona page")
    pid = page.current_url.rsplit("/", 1)[1]
    digest = by_css(page, "[data-consent=text_sha256]")[0].text
    recorded = httpx.get(f"{portal.url}/personas/{pid}", headers=auth(portal.owner_key)).json()
    assert digest == recorded["consent"]["text_sha256"]

    export = demo_whatsapp_export(messages=160, seed=3)
    (tmp_path / "chat.txt").write_bytes(export)
    (tmp_path / "broken.txt").write_bytes(b"not a chat\n" + export)
    by_css(page, "#files")[0].send_keys(f"{tmp_path / 'chat.txt'}\n{tmp_path / 'broken.txt'}")
    by_css(page, "#files")[0].submit()
    wait_for(page, lambda d: by_css(d, "tr[data-file]"), "no upload results")
    rows = _rows(page)
    assert rows["chat.txt"][0] == "accepted" and "80 of them the persona's" in rows["chat.txt"][1]
    assert rows["broken.txt"][0] == "rejected" and "line 1" in rows["broken.txt"][1]
    shot(page, "persona-uploads")

    page.get(f"{portal.url}/portal/personas/{pid}")
    assert by_css(page, "[data-training]")[0].text == "training"
    page.execute_script("window.notReloaded = true")
    shot(page, "persona-training")
    with dg.instance_for_test() as instance:
        runs, _ = run_persona_training_in_process(build_definitions(portal.settings), instance)
    assert [run.success for run in runs] == [True]
    wait_for(
        page,
        lambda d: by_css(d, "[data-training]")[0].text == "ready",
        "the training panel did not turn ready on its own",
    )
    assert page.execute_script("return window.notReloaded") is True  # htmx swapped it in
    assert by_css(page, "tr[data-version='1']")
    shot(page, "persona-trained")

    type_into(page, "prompt", "are you free friday?")
    by_css(page, "#prompt")[0].submit()
    wait_for(page, lambda d: by_css(d, "#approve"), "no draft to review")
    draft = by_css(page, "#draft-text")[0].text
    shot(page, "persona-draft")
    by_css(page, "#approve")[0].click()
    wait_for(page, lambda d: by_css(d, "#released"), "the approved draft was not released")
    did = page.current_url.rsplit("/", 1)[1]
    released = httpx.get(f"{portal.url}/drafts/{did}/message", headers=auth(portal.owner_key))
    assert by_css(page, "#released")[0].text == released.json()["text"].strip() == draft.strip()
    shot(page, "persona-released")
    for path in [page.current_url, f"{portal.url}/portal/personas/{pid}"]:
        page.get(path)
        assert _unlabelled(page) == [], path
        assert [r for r, _ in _contrasts(page) if r < 4.5] == [], path

    [link] = [a for a in by_css(page, "main a") if a.text.startswith("Revoke consent")]
    link.click()
    wait_for(page, lambda d: by_css(d, "#confirm"), "no confirmation page")
    by_css(page, "main button[type=submit]")[0].click()  # not confirmed
    wait_for(page, lambda d: by_css(d, "#confirm-error"), "revoked without the confirmation")
    shot(page, "persona-revoke-confirm")
    by_css(page, "#confirm")[0].click()
    by_css(page, "main button[type=submit]")[0].click()
    wait_for(page, lambda d: "Gone" in d.find_element("tag name", "h1").text, "not revoked")
    assert "consent was revoked" in errors(page)[0]
    shot(page, "persona-revoked")


def test_rejected_photos_and_a_refused_prompt_are_shown_with_their_reasons(
    portal, page, tmp_path
) -> None:
    photos = list(subject_photos().items())[:3]
    paths = []
    for name, data in photos:
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    table = io.BytesIO()
    Image.new("RGB", (400, 300), (120, 80, 40)).save(table, format="PNG")
    (tmp_path / "table.png").write_bytes(table.getvalue())
    paths.append(tmp_path / "table.png")

    sign_in(page, portal, portal.owner_key, then="/portal/subjects/new")
    type_into(page, "trigger", "sks_ada")
    by_css(page, "#photos")[0].send_keys("\n".join(map(str, paths)))
    by_css(page, "main button[type=submit]")[0].click()  # no consent ticked
    wait_for(page, lambda d: by_css(d, "#consent-error"), "uploaded without consent")
    shot(page, "subject-consent-refused")
    by_css(page, "#photos")[0].send_keys("\n".join(map(str, paths)))  # a file input is not kept
    by_css(page, "#consent")[0].click()
    by_css(page, "main button[type=submit]")[0].click()
    wait_for(page, lambda d: by_css(d, "[data-status]"), "no subject page")
    assert by_css(page, "[data-status]")[0].text == "pending"
    with dg.instance_for_test() as instance:
        runs, _ = run_subjects_in_process(build_definitions(portal.settings), instance, None, False)
    assert [run.success for run in runs] == [False]  # 3 usable photos: too few to train
    wait_for(page, lambda d: by_css(d, "[data-status]")[0].text == "failed", "not failed")
    [rejected] = by_css(page, "li.rejected")
    assert rejected.get_attribute("data-photo") == "table.png"
    assert "no face" in rejected.find_element("css selector", ".reason").text
    loaded = "return arguments[0].complete && arguments[0].naturalWidth"
    assert page.execute_script(loaded, rejected.find_element("css selector", "img")) > 0
    assert len(by_css(page, "li.accepted")) == 0  # nothing prepared: the photos step failed
    shot(page, "subject-rejected")

    type_into(page, "prompt", "a nude photo of [trigger]")
    by_css(page, "#prompt")[0].submit()
    [message] = wait_for(page, lambda d: by_css(d, "#prompt-error"), "no policy message")
    assert "refused by the content policy" in message.text and "'nude'" in message.text
    shot(page, "subject-prompt-refused")

    # Every input of these pages has a label, and every text enough contrast.
    subject_page = page.current_url.removesuffix("/generate")
    for path in ["/portal/personas", "/portal/personas/new", "/portal/subjects",
                 "/portal/subjects/new", subject_page.removeprefix(portal.url),
                 subject_page.removeprefix(portal.url) + "/revoke"]:  # fmt: skip
        page.get(portal.url + path)
        assert _unlabelled(page) == [], path
        low = [(round(ratio, 2), html) for ratio, html in _contrasts(page) if ratio < 4.5]
        assert low == [], path
