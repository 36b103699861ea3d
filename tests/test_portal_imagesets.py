"""The portal's image set pages over HTTP without a browser (the forms work without JavaScript),
on SQLite and PostgreSQL: a real set registered through the form → the image set line really run
(profile → synthetic set → validation → exports) → the set's page shows the profile report and
the validation report with the numbers the stages stored, each metric with its limit and verdict,
the plots through owner-checked routes, the exports; a failed set's reason and retry; the API's
rules for sources (a server path needs an admin), its 422s beside the field, CSRF, and another
owner refused on every page, fragment, image and form."""

from __future__ import annotations

import html
import json
import re

import pytest
from fastapi.testclient import TestClient

from synth_pipelines.core.imagesets.demo_images import write_demo_set
from synth_pipelines.core.imagesets.pipeline import set_prefix
from synth_pipelines.core.imagesets.registry import list_image_sets
from synth_pipelines.core.security.accounts import create_api_key
from synth_pipelines.core.storage.object_store import open_object_store
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import run_image_sets_in_process
from synth_pipelines.portal.imagesets import limit_of
from tests.helpers import auth
from tests.test_portal import ADMIN_TOKEN, csrf, errors, signed_in

SET_URL = re.compile(r"^/portal/imagesets/([0-9a-f]{32})$")


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {
        "SYNTH_IMAGES_COUNT": "16",
        "SYNTH_IMAGES_OCR": "off",
        "SYNTH_IMAGES_FORMATS": "parquet,coco",
        "SYNTH_ADMIN_TOKEN": ADMIN_TOKEN,
        "SYNTH_PORTAL_SECRET": "portal-test-secret",
    }


@pytest.fixture(scope="module")
def real_set(tmp_path_factory):
    return write_demo_set(tmp_path_factory.mktemp("real"), count=24, seed=1)


@pytest.fixture
def app(settings):
    from synth_pipelines.api.app import create_app

    return create_app(settings)


def register(client: TestClient, **form: str | list[str]) -> str:
    """A set registered through the form; its id."""
    token = csrf(client, "/portal/imagesets/new")
    response = client.post(
        "/portal/imagesets/new", data={"csrf_token": token, **form}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return SET_URL.match(response.headers["location"]).group(1)


def cell(page: str, table: str, row: str, column: int) -> str:
    """The text of `column` (0: the row's name) of the row `data-*="row"` in table `table`."""
    body = re.search(rf'<table id="{re.escape(table)}">(.*?)</table>', page, re.S).group(1)
    found = re.search(rf'<tr data-[a-z]+="{re.escape(row)}">(.*?)</tr>', body, re.S).group(1)
    cells = re.findall(r"<td>(.*?)</td>", found, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", cells[column])).strip()


def shown(value) -> str:
    """A number as the page writes it."""
    if isinstance(value, bool) or value is None:
        return "\u2013" if value is None else str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def test_a_registered_set_is_run_and_its_page_shows_the_profile_and_validation_reports(
    app, settings, instance, real_set
) -> None:
    db = app.state.synth.db
    admin = signed_in(app, create_api_key(db, "root", "admin"))
    assert 'href="/portal/imagesets"' in admin.get("/").text  # in the nav and on the start page
    set_id = register(admin, source=str(real_set), name="demo", seed="5")

    page = admin.get(f"/portal/imagesets/{set_id}")
    assert page.status_code == 200
    assert 'data-status="pending"' in page.text
    assert f'hx-get="/portal/imagesets/{set_id}/status"' in page.text  # polls while it moves
    listed = admin.get("/portal/imagesets").text
    assert f'data-set="{set_id}"' in listed and "demo" in listed

    runs, _ = run_image_sets_in_process(build_definitions(settings), instance)
    assert [run.success for run in runs] == [True]

    page = admin.get(f"/portal/imagesets/{set_id}").text
    assert 'data-status="ready"' in page and "hx-get" not in page  # settled: no more polling
    fragment = admin.get(f"/portal/imagesets/{set_id}/status")
    assert fragment.status_code == 200 and fragment.text.lstrip().startswith("<section")

    store = open_object_store(**settings.store_options())
    prefix = set_prefix(set_id)
    profile = json.loads(store.get_bytes(f"{prefix}/real/profile.json"))
    report = json.loads(store.get_bytes(f"{prefix}/validation/report.json"))

    # The profile report: counts, each feature's statistics, class balance, sizes.
    assert profile["counts"]["images"] == 24
    assert re.search(r'data-profile="images">24<', page)
    assert re.search(rf'data-profile="ok">{profile["counts"]["ok"]}<', page)
    for feature in ("width", "brightness", "sharpness", "noise"):
        stats = profile["features"][feature]
        assert cell(page, "features", feature, 1) == shown(stats["min"]), feature
        assert cell(page, "features", feature, 3) == shown(stats["p50"]), feature
        assert cell(page, "features", feature, 7) == shown(stats["std"]), feature
    total = sum(profile["labels"].values())
    for label, count in profile["labels"].items():
        assert cell(page, "balance", label, 1) == str(count)
        assert cell(page, "balance", label, 2) == f"{100 * count / total:.1f}%"
    for mode, count in profile["modes"].items():
        assert cell(page, "modes", mode, 1) == str(count)

    # The validation report: every metric with its value, limit and verdict, as stored.
    assert [c for c in ("quality", "fidelity", "privacy") if f'data-check="{c}"' in page] == [
        "quality", "fidelity", "privacy"
    ]  # fmt: skip
    judged = 0
    for name, check in report.items():
        verdict = {True: "passed", False: "failed", None: "skipped"}[check["passed"]]
        block = page.split(f'data-check="{name}"', 1)[1].split('<div class="report"', 1)[0]
        assert f'data-verdict="{verdict}"' in block, name
        for message in check["messages"]:
            assert message in html.unescape(block)
        for metric, value in check["metrics"].items():
            assert cell(page, f"metrics-{name}", metric, 1) == shown(value), metric
            limit = limit_of(metric, check["thresholds"])
            if limit is not None:
                judged += 1
                assert cell(page, f"metrics-{name}", metric, 2) == f"{limit[0]} {shown(limit[1])}"
                verdict = "failed" if metric in check["failed_checks"] else "passed"
                assert cell(page, f"metrics-{name}", metric, 3) == verdict, metric
        for skipped in check["skipped"]:
            assert f'data-skipped="{skipped}"' in block
    assert judged >= 15  # width..noise twice, precision..kid, bad/duplicate/copy shares
    assert "ks.width" in report["fidelity"]["metrics"]
    assert cell(page, "metrics-fidelity", "ks.width", 2) == f"at most {shown(0.2)}"

    # The plots and the HTML report through owner-checked routes; the exports with manifests.
    for plot in ("features", "embeddings", "outliers"):
        assert f"/portal/imagesets/{set_id}/profile/{plot}.png" in page
        image = admin.get(f"/portal/imagesets/{set_id}/profile/{plot}.png")
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
        assert image.headers["cache-control"] == "private, no-store"
        assert image.content == store.get_bytes(f"{prefix}/real/report/{plot}.png")
    html_report = admin.get(f"/portal/imagesets/{set_id}/profile/report.html")
    assert html_report.status_code == 200 and "Image set profile" in html_report.text
    assert admin.get(f"/portal/imagesets/{set_id}/profile/secret.png").status_code == 404
    for fmt in ("coco", "parquet"):
        assert f'<li data-format="{fmt}">' in page
        manifest = admin.get(f"/portal/imagesets/{set_id}/exports/{fmt}/manifest.json")
        assert manifest.status_code == 200 and manifest.json()["counts"]["images"] == 16
    assert admin.get(f"/portal/imagesets/{set_id}/exports/jsonl/manifest.json").status_code == 404

    # Another owner: every page, fragment, image, file and form of this set is a 404.
    stranger = signed_in(app, create_api_key(db, "bob", "owner"))
    for path in ("", "/status", "/profile/features.png", "/profile/outliers.png",
                 "/profile/report.html", "/exports/parquet/manifest.json"):  # fmt: skip
        response = stranger.get(f"/portal/imagesets/{set_id}{path}")
        assert response.status_code == 404, path
        assert b"PNG" not in response.content[:8] and "Image set profile" not in response.text
    token = csrf(stranger, "/portal/imagesets")
    retried = stranger.post(f"/portal/imagesets/{set_id}/retry", data={"csrf_token": token})
    assert retried.status_code == 404
    assert f'data-set="{set_id}"' not in stranger.get("/portal/imagesets").text


def test_a_failed_set_shows_its_reason_and_retries(app, settings, instance, tmp_path) -> None:
    db = app.state.synth.db
    key = create_api_key(db, "root", "admin")
    admin = signed_in(app, key)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    set_id = register(admin, source=str(empty), count="4")
    early = admin.post(f"/portal/imagesets/{set_id}/retry",
                       data={"csrf_token": csrf(admin, "/portal/imagesets")})  # fmt: skip
    assert early.status_code == 409 and "only a failed set" in early.text
    runs, _ = run_image_sets_in_process(build_definitions(settings), instance, raise_on_error=False)
    assert [run.success for run in runs] == [False]

    page = admin.get(f"/portal/imagesets/{set_id}").text
    api = TestClient(app).get(f"/imagesets/{set_id}", headers=auth(key)).json()
    assert api["status"] == "failed" and 'data-status="failed"' in page
    assert api["error"] in html.unescape(page) and str(empty) in api["error"]
    assert 'id="retry"' in page and "hx-get" not in page
    retried = admin.post(
        f"/portal/imagesets/{set_id}/retry",
        data={"csrf_token": csrf(admin, f"/portal/imagesets/{set_id}")},
        follow_redirects=False,
    )
    assert retried.status_code == 303
    after = TestClient(app).get(f"/imagesets/{set_id}", headers=auth(key)).json()
    assert (after["status"], after["attempts"]) == ("pending", 1)
    assert 'data-status="pending"' in admin.get(f"/portal/imagesets/{set_id}").text


def test_an_owner_registers_an_s3_prefix_but_not_a_path_on_the_server(
    app, real_set, tmp_path
) -> None:
    db = app.state.synth.db
    owner = signed_in(app, create_api_key(db, "alice", "owner"))
    token = csrf(owner, "/portal/imagesets/new")
    refused = owner.post("/portal/imagesets/new", data={"csrf_token": token,
                                                        "source": str(real_set)})  # fmt: skip
    assert refused.status_code == 403
    assert "admin" in errors(refused.text)["source-error"]
    assert list_image_sets(db) == []

    set_id = register(owner, source="s3://street-scenes/2024/", formats=["jsonl", "coco"],
                      backend="gan", truncation="0.5")  # fmt: skip
    stored = list_image_sets(db)
    assert [(s["id"], s["owner"], s["source_kind"]) for s in stored] == [(set_id, "alice", "s3")]
    assert stored[0]["params"]["formats"] == ["jsonl", "coco"]
    assert stored[0]["params"]["truncation"] == 0.5 and stored[0]["params"]["backend"] == "gan"
    # Each sees their own: another owner's list does not hold it, an admin's does.
    assert f'data-set="{set_id}"' in owner.get("/portal/imagesets").text
    other = signed_in(app, create_api_key(db, "bob", "owner"))
    assert f'data-set="{set_id}"' not in other.get("/portal/imagesets").text
    everyone = signed_in(app, create_api_key(db, "root", "admin"))
    listed = everyone.get("/portal/imagesets").text
    assert f'data-set="{set_id}"' in listed and "alice" in listed


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({"source": "s3://b-1/x", "name": "n" * 129}, "name", "name is 129 characters"),
        ({"source": "s3://"}, "source", "is not s3://<bucket>"),
        ({"source": "s3://b-1/x", "count": "0"}, "count", "count must be 1 to"),
        ({"source": "s3://b-1/x", "count": "many"}, "count", "count: Input should be"),
        ({"source": "s3://b-1/x", "backend": "vae"}, "backend", "backend: Input should be"),
        ({"source": "s3://b-1/x", "formats": ["tiff"]}, "formats", "formats.0: Input should"),
        ({"source": "s3://b-1/x", "truncation": "3"}, "truncation", "truncation must be 0 to 2"),
        ({"source": "s3://b-1/x", "seed": "-1"}, "seed", "seed must be >= 0"),
    ],
)
def test_a_bad_form_shows_the_apis_message_beside_the_field(app, form, field, words) -> None:
    db = app.state.synth.db
    key = create_api_key(db, "alice", "owner")
    owner = signed_in(app, key)
    token = csrf(owner, "/portal/imagesets/new")
    response = owner.post("/portal/imagesets/new", data={"csrf_token": token, **form})
    assert response.status_code == 422, response.text
    message = errors(response.text)[f"{field}-error"]
    assert words in message, message
    # The JSON endpoint says the same of the same body.
    body = {k: v for k, v in form.items() if v != ""} | {"source": form["source"]}
    for name in ("count", "seed"):
        if name in body and body[name].lstrip("-").isdigit():
            body[name] = int(body[name])
    if "truncation" in body:
        body["truncation"] = float(body["truncation"])
    answer = TestClient(app).post("/imagesets", json=body, headers=auth(key))
    assert answer.status_code == 422 and answer.json()["detail"] == message
    assert list_image_sets(db) == []


def test_a_post_without_this_browsers_csrf_token_is_refused(app, real_set) -> None:
    db = app.state.synth.db
    admin = signed_in(app, create_api_key(db, "root", "admin"))
    for form in ({}, {"csrf_token": "forged"}):
        response = admin.post("/portal/imagesets/new", data={**form, "source": str(real_set)})
        assert response.status_code == 403 and "CSRF token" in response.text
    assert list_image_sets(db) == []
    set_id = register(admin, source=str(real_set))
    assert admin.post(f"/portal/imagesets/{set_id}/retry").status_code == 403


def test_sign_in_is_needed(app) -> None:
    client = TestClient(app)
    response = client.get("/portal/imagesets", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/signin?next=/portal/imagesets"


def test_each_metric_is_judged_by_the_threshold_its_report_names() -> None:
    fidelity = {"max_wasserstein": {"width": 0.25, "noise": 0.5}, "max_ks": 0.2,
                "min_precision": 0.5, "max_kid": 0.05, "prdc_nearest_k": 5}  # fmt: skip
    assert limit_of("wasserstein.noise", fidelity) == ("at most", 0.5)
    assert limit_of("ks.noise", fidelity) == ("at most", 0.2)
    assert limit_of("precision", fidelity) == ("at least", 0.5)
    assert limit_of("kid", fidelity) == ("at most", 0.05)
    assert limit_of("ks_pvalue.noise", fidelity) is None  # measured, not judged
    assert limit_of("wasserstein.sharpness", fidelity) is None
    privacy = {"max_copy_share": 0.0, "min_dcr_share": 0.45, "copy_requires_both": False}
    assert limit_of("copy_share", privacy) == ("at most", 0.0)
    assert limit_of("dcr_share", privacy) == ("at least", 0.45)
    assert limit_of("copies", privacy) is None
