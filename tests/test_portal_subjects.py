"""The subject pages over HTTP without a browser, on SQLite and PostgreSQL: consent and photo
upload, the status with accepted and rejected photos (reasons and thumbnails, through routes that
check ownership), the LoRA registry and sample gallery (the tiny Flux pipeline, really trained by
the sensor's run), prompt → generated gallery and the content policy's refusals beside the prompt,
revocation behind its confirmation, and another owner refused on every page and image."""

from __future__ import annotations

import html
import io
import re

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from synth_pipelines.api.app import create_app
from synth_pipelines.core.security.accounts import create_api_key
from synth_pipelines.core.security.crypto import generate_master_key
from synth_pipelines.core.storage.models import Subject
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import run_subjects_in_process
from synth_pipelines.portal.subject_images import THUMBNAIL
from synth_pipelines.resources.object_store import ObjectStoreResource
from tests.face_photos import subject_photos
from tests.helpers import auth
from tests.test_portal import csrf, errors, signed_in


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {
        "SYNTH_PORTAL_SECRET": "portal-test-secret",
        "SYNTH_MASTER_KEY": generate_master_key(),
        "SYNTH_FLUX_BASE_MODEL": "tiny-test",
        "SYNTH_FLUX_TRAIN_STEPS": "4",
        "SYNTH_FLUX_RANK": "4",
        "SYNTH_FLUX_ALPHA": "8",
        "SYNTH_FLUX_TARGET_MODULES": "to_q,to_v",
        "SYNTH_FLUX_CHECKPOINT_EVERY": "2",
        "SYNTH_FLUX_SAMPLE_EVERY": "2",
        "SYNTH_FLUX_SAMPLE_STEPS": "2",
        "SYNTH_FLUX_RESOLUTION": "64",
        "SYNTH_FLUX_SAMPLE_SIZE": "64",
        "SYNTH_FLUX_VALIDATION_PROMPTS": "a photo of [trigger]|[trigger] nude on a beach",
    }


@pytest.fixture
def app(settings):
    return create_app(settings)


def png(colour=(120, 80, 40), size=(400, 300)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(client: TestClient, files: list[tuple[str, bytes]], **form):
    data = {"csrf_token": csrf(client, "/portal/subjects/new"), "trigger": "sks",
            "consent": "true", **form}  # fmt: skip
    return client.post(
        "/portal/subjects/new",
        data=data,
        files=[("photos", (name, content, "application/octet-stream")) for name, content in files],
        follow_redirects=False,
    )


def generate(client: TestClient, sid: str, **form):
    page = f"/portal/subjects/{sid}"
    data = {"csrf_token": csrf(client, page), "n": "1", "seed": "0", **form}
    return client.post(f"{page}/generate", data=data)


def image_links(page: str, kind: str) -> list[str]:
    """The image URLs of one gallery (`photos`, `rejected`, `samples`) on a subject's page."""
    return re.findall(rf'<img src="(/portal/subjects/\w+/{kind}/[^"]+)"', page)


def decodes(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


# Training is the cost here and it is the same on either DB (test_flux_flow trains on both);
# the pages' own reads and writes run on PostgreSQL too in the tests below.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_photos_to_lora_samples_generation_and_revocation(app, settings, db) -> None:
    owner_key = create_api_key(db, "ada", "owner")
    owner = signed_in(app, owner_key)
    stranger = signed_in(app, create_api_key(db, "bob", "owner"))
    photos = subject_photos()
    files = [*list(photos.items())[:5], ("table.png", png())]
    response = upload(owner, files)
    assert response.status_code == 303, response.text
    page_path = response.headers["location"]
    sid = page_path.rsplit("/", 1)[1]
    page = owner.get(page_path)
    assert 'data-status="pending"' in page.text and "hx-get" in page.text  # it polls

    with dg.instance_for_test() as instance:
        runs, _ = run_subjects_in_process(build_definitions(settings), instance)
    assert [run.success for run in runs] == [True]
    page = owner.get(page_path)
    assert 'data-status="ready"' in page.text and "hx-get" not in page.text
    api = owner.get(f"/subjects/{sid}", headers=auth(owner_key)).json()
    [rejected] = api["rejected"]
    assert rejected["name"] == "table.png" and "no face" in rejected["reason"]
    # The rejected photo, its reason and its thumbnail; the accepted ones too.
    assert re.search(
        r'<li class="rejected" data-photo="table.png">\s*<img src="[^"]+/rejected/0.png"'
        r'[^>]*>\s*<span>table.png</span>\s*<span class="error reason">'
        + re.escape(html.escape(rejected["reason"])),
        page.text,
    )
    [thumb] = image_links(page.text, "rejected")
    response = owner.get(thumb)
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "private, no-store"
    assert decodes(response.content) == (THUMBNAIL, THUMBNAIL * 3 // 4)  # the 400x300 table
    accepted = image_links(page.text, "photos")
    assert len(accepted) == api["photos"] == 5
    assert all(max(decodes(owner.get(link).content)) <= THUMBNAIL for link in accepted)
    # The registry and the samples: the validation prompt the policy refused drew none.
    assert re.search(r'<tr data-version="1">\s*<td>v1</td>\s*<td>4</td>', page.text)
    samples = image_links(page.text, "samples")
    names = [link.rsplit("/", 1)[1] for link in samples]
    assert names == ["final-0.png", "step-000002-0.png", "step-000004-0.png"]
    assert all(decodes(owner.get(link).content) == (64, 64) for link in samples)

    # Prompt → generated gallery; the content policy's refusal beside the prompt.
    response = generate(owner, sid, prompt="[trigger] on a mountain", n="2", seed="5")
    assert response.status_code == 200
    generated = re.findall(r'<img src="data:image/png;base64,([^"]+)"', response.text)
    assert len(generated) == 2
    body = {"prompt": "[trigger] on a mountain", "n": 2, "seed": 5}
    api = owner.post(f"/subjects/{sid}/generate", json=body, headers=auth(owner_key)).json()
    assert generated == api["images"]  # the same use case, the same seeded images
    response = generate(owner, sid, prompt="a naked [trigger]")
    api = owner.post(
        f"/subjects/{sid}/generate", json={"prompt": "a naked [trigger]"}, headers=auth(owner_key)
    )
    assert response.status_code == api.status_code == 403
    assert errors(response.text) == {"prompt-error": api.json()["detail"]}
    assert "data:image/png" not in response.text

    # Another owner: every page, fragment, image and form of this subject is a 404.
    paths = [page_path, f"{page_path}/status", f"{page_path}/revoke", thumb, *accepted, *samples]
    for path in paths:
        response = stranger.get(path)
        assert response.status_code == 404, path
        assert "image/png" not in response.headers["content-type"]
    token = csrf(stranger, "/portal/subjects")
    for path, data in [
        (f"{page_path}/generate", {"prompt": "[trigger] on a mountain", "n": "1", "seed": "0"}),
        (f"{page_path}/revoke", {"confirm": "yes"}),
    ]:
        assert stranger.post(path, data={"csrf_token": token, **data}).status_code == 404, path
    assert sid not in stranger.get("/portal/subjects").text
    assert sid in owner.get("/portal/subjects").text

    # Revocation needs its confirmation.
    confirm = owner.get(f"{page_path}/revoke")
    assert confirm.status_code == 200 and 'name="confirm"' in confirm.text
    token = csrf(owner, f"{page_path}/revoke")
    response = owner.post(f"{page_path}/revoke", data={"csrf_token": token})
    assert response.status_code == 422 and "confirm-error" in errors(response.text)
    response = owner.post(
        f"{page_path}/revoke", data={"csrf_token": token, "confirm": "yes"}, follow_redirects=False
    )
    assert response.status_code == 303
    store = ObjectStoreResource(backend="local", root=str(settings.store.root)).get_store()
    assert list(store.list_keys(f"subjects/{sid}/")) == []
    for path in [page_path, thumb, samples[0]]:
        response = owner.get(path)
        assert response.status_code == 410 and "consent was revoked" in response.text, path
    assert sid not in owner.get("/portal/subjects").text


def test_too_few_photos_show_each_rejected_one_with_its_reason_and_thumbnail(
    app, settings, db
) -> None:
    owner = signed_in(app, create_api_key(db, "ada", "owner"))
    photos = list(subject_photos().items())[:3]
    files = [*photos, ("green.png", png((10, 200, 10), (300, 300))), ("notes.txt", b"hi")]
    sid = upload(owner, files).headers["location"].rsplit("/", 1)[1]
    with dg.instance_for_test() as instance:
        runs, _ = run_subjects_in_process(build_definitions(settings), instance, None, False)
    assert [run.success for run in runs] == [False]
    page = owner.get(f"/portal/subjects/{sid}")
    assert 'data-status="failed"' in page.text and "3 usable photos" in html.unescape(page.text)
    with db.session() as session:
        reasons = {r["name"]: r["reason"] for r in session.get(Subject, sid).rejected}
    assert set(reasons) == {"green.png", "notes.txt"}
    for index, (name, reason) in enumerate(reasons.items()):
        assert f'data-photo="{name}"' in page.text
        assert html.escape(reason) in page.text
        thumb = owner.get(f"/portal/subjects/{sid}/rejected/{index}.png")
        assert thumb.status_code == 200 and max(decodes(thumb.content)) <= THUMBNAIL
    # notes.txt is no image: a placeholder tile stands for it.
    assert decodes(owner.get(f"/portal/subjects/{sid}/rejected/1.png").content) == (
        THUMBNAIL,
        THUMBNAIL,
    )
    assert owner.get(f"/portal/subjects/{sid}/rejected/2.png").status_code == 404
    # The panel counts what the error counts, and offers a retry that the subject sensor picks up.
    assert "3 usable, 2 rejected" in page.text and 'id="retry"' in page.text
    retried = owner.post(
        f"/portal/subjects/{sid}/retry",
        data={"csrf_token": csrf(owner, f"/portal/subjects/{sid}")},
        follow_redirects=False,
    )
    assert retried.status_code == 303
    with db.session() as session:
        assert session.get(Subject, sid).status == "pending"
    again = owner.get(f"/portal/subjects/{sid}").text
    assert 'data-status="pending"' in again and 'id="retry"' not in again
    early = owner.post(f"/portal/subjects/{sid}/retry",
                       data={"csrf_token": csrf(owner, f"/portal/subjects/{sid}")})  # fmt: skip
    assert early.status_code == 409 and "not failed" in html.unescape(early.text)


def test_another_owner_is_refused_every_page_and_image_of_a_subject(app, settings, db) -> None:
    owner = signed_in(app, create_api_key(db, "ada", "owner"))
    stranger = signed_in(app, create_api_key(db, "bob", "owner"))
    photos = [*list(subject_photos().items())[:3], ("table.png", png())]
    sid = upload(owner, photos).headers["location"].rsplit("/", 1)[1]
    with dg.instance_for_test() as instance:
        run_subjects_in_process(build_definitions(settings), instance, None, False)
    page = f"/portal/subjects/{sid}"
    assert owner.get(f"{page}/rejected/0.png").status_code == 200
    for path in ["", "/status", "/revoke", "/rejected/0.png", "/photos/0.png",
                 "/samples/v1/final-0.png"]:  # fmt: skip
        response = stranger.get(page + path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html"), path
    token = csrf(stranger, "/portal/subjects")
    for path, data in [("/generate", {"prompt": "[trigger]"}), ("/revoke", {"confirm": "yes"}),
                       ("/retry", {})]:  # fmt: skip
        response = stranger.post(page + path, data={"csrf_token": token, **data})
        assert response.status_code == 404, path
    assert sid not in stranger.get("/portal/subjects").text
    with db.session() as session:
        assert session.get(Subject, sid).status == "failed"  # not revoked by the stranger
    # An admin sees every subject, and its images.
    admin = signed_in(app, create_api_key(db, "root", "admin"))
    assert f'data-subject="{sid}"' in admin.get("/portal/subjects").text
    assert admin.get(f"{page}/rejected/0.png").headers["content-type"] == "image/png"


def test_the_upload_form_shows_the_apis_refusals_beside_the_fields(app, settings, db) -> None:
    owner_key = create_api_key(db, "ada", "owner")
    owner = signed_in(app, owner_key)
    files = list(subject_photos().items())[:4]
    refused = upload(owner, files, consent="")
    api = owner.post(
        "/subjects",
        files=[("photos", (n, d, "image/jpeg")) for n, d in files],
        data={"trigger": "sks", "consent": "false"},
        headers=auth(owner_key),
    )
    assert refused.status_code == api.status_code == 403
    assert errors(refused.text) == {"consent-error": api.json()["detail"]}
    bad = upload(owner, files, trigger="two words")
    assert bad.status_code == 422
    assert list(errors(bad.text)) == ["trigger-error"]
    empty = upload(owner, [])
    assert empty.status_code == 422
    assert errors(empty.text)["photos-error"].startswith("no photos in the upload")
    with db.session() as session:
        assert session.query(Subject).count() == 0
    store = ObjectStoreResource(backend="local", root=str(settings.store.root)).get_store()
    assert list(store.list_keys("subjects/")) == []


def test_a_refused_prompt_is_the_policys_message_beside_the_prompt(app, db) -> None:
    owner = signed_in(app, create_api_key(db, "ada", "owner"))
    sid = upload(owner, list(subject_photos().items())[:4]).headers["location"].rsplit("/", 1)[1]
    response = generate(owner, sid, prompt="a NUDE portrait of [trigger]")
    assert response.status_code == 403
    assert errors(response.text) == {
        "prompt-error": "prompt refused by the content policy: it contains 'nude' "
        "(SYNTH_FLUX_DENY_TERMS sets the list)"
    }
    assert ">a NUDE portrait of [trigger]</textarea>" in response.text
    # Allowed, but nothing is trained yet: said beside the prompt too.
    response = generate(owner, sid, prompt="[trigger] at the beach")
    assert response.status_code == 409
    assert errors(response.text) == {"prompt-error": f"subject {sid} has no trained LoRA yet"}
    response = generate(owner, sid, prompt="x", n="many")
    assert response.status_code == 422 and list(errors(response.text)) == ["n-error"]


def test_a_post_without_the_csrf_token_is_refused(app, db) -> None:
    owner = signed_in(app, create_api_key(db, "ada", "owner"))
    response = owner.post(
        "/portal/subjects/new",
        data={"trigger": "sks", "consent": "true"},
        files=[("photos", (n, d, "image/jpeg")) for n, d in list(subject_photos().items())[:4]],
    )
    assert response.status_code == 403 and "CSRF token" in response.text
    with db.session() as session:
        assert session.query(Subject).count() == 0
