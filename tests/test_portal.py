"""The portal over HTTP without a browser (the forms work without JavaScript): sign-in and its
cookie, CSRF, roles, and the dataset forms' messages, which are the JSON API's own 422s."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient

from synth_pipelines.api.app import create_app
from synth_pipelines.core.delivery.requests import get_request, request_counts
from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS
from synth_pipelines.core.security.accounts import create_api_key, revoke_api_key

ADMIN_TOKEN = "portal-admin-token-0123456789"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ERRORS = re.compile(r'<p class="error"(?: id="([^"]+)")?[^>]*>([^<]*)</p>')


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {"SYNTH_ADMIN_TOKEN": ADMIN_TOKEN, "SYNTH_PORTAL_SECRET": "portal-test-secret"}


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def owner_key(app) -> str:
    return create_api_key(app.state.synth.db, "alice", "owner")


def csrf(client: TestClient, page: str = "/portal/signin") -> str:
    response = client.get(page)
    assert response.status_code == 200, response.text
    return CSRF.search(response.text).group(1)


def errors(page: str) -> dict[str | None, str]:
    """The page's error messages by the id of the element they sit in (None: the form's)."""
    return {where or None: html.unescape(text) for where, text in ERRORS.findall(page)}


def signed_in(app, key: str) -> TestClient:
    client = TestClient(app)
    response = client.post(
        "/portal/signin",
        data={"api_key": key, "csrf_token": csrf(client), "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def test_the_root_is_the_portal_and_the_api_keeps_its_paths(app) -> None:
    client = TestClient(app)
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/signin?next=/"
    assert client.get("/docs").status_code == 200 and client.get("/redoc").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/datasets" in paths and not any(path.startswith("/portal") for path in paths)
    assert client.get("/portal/static/htmx.min.js").text.startswith("var htmx=")
    assert client.post("/datasets", json={"buckets": {}}).status_code == 422  # JSON as before


def test_sign_in_sets_a_signed_strict_http_only_cookie_that_does_not_hold_the_key(
    app, owner_key
) -> None:
    client = TestClient(app)
    token = csrf(client)
    refused = client.post("/portal/signin", data={"api_key": "sp_nope", "csrf_token": token})
    assert refused.status_code == 401
    assert errors(refused.text) == {"api_key-error": "invalid or revoked API key"}

    response = client.post(
        "/portal/signin",
        data={"api_key": owner_key, "csrf_token": token, "next": "/portal/datasets/new"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/datasets/new"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("synth_session=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    secret = owner_key.rsplit("_", 1)[1]
    assert secret not in cookie and owner_key not in cookie
    home = client.get("/")
    assert home.status_code == 200 and "owner:alice" in home.text
    assert "Admin dashboard" not in home.text

    # A forged cookie (the value edited) is no session.
    forged = TestClient(app, cookies={"synth_session": client.cookies["synth_session"][:-2] + "xx"})
    assert forged.get("/", follow_redirects=False).status_code == 303


def test_a_revoked_key_ends_its_session_at_once_and_sign_out_ends_it_too(app, owner_key) -> None:
    client = signed_in(app, owner_key)
    assert client.get("/portal/datasets/new").status_code == 200
    key_id = owner_key.split("_")[1]
    revoke_api_key(app.state.synth.db, key_id)
    gone = client.get("/portal/datasets/new", follow_redirects=False)
    assert gone.status_code == 303
    assert gone.headers["location"] == "/portal/signin?next=/portal/datasets/new"

    other = signed_in(app, create_api_key(app.state.synth.db, "bob", "owner"))
    token = csrf(other, "/")
    response = other.post("/portal/signout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and 'synth_session=""' in response.headers["set-cookie"]
    assert other.get("/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "form",
    [
        {},  # no token at all
        {"csrf_token": "forged"},
    ],
)
def test_a_post_without_this_browsers_csrf_token_is_refused(app, owner_key, form) -> None:
    client = signed_in(app, owner_key)
    response = client.post(
        "/portal/datasets/new", data={**form, "bucket:female/adult": "2", "image_size": "64"}
    )
    assert response.status_code == 403
    assert "CSRF token" in response.text
    assert request_counts(app.state.synth.db) == {}  # nothing stored
    # Sign-in is a form like any other.
    fresh = TestClient(app)
    response = fresh.post("/portal/signin", data={**form, "api_key": owner_key})
    assert response.status_code == 403 and "synth_session" not in response.headers.get(
        "set-cookie", ""
    )


def test_admin_pages_need_an_admin(app, owner_key) -> None:
    owner = signed_in(app, owner_key)
    refused = owner.get("/portal/admin")
    assert refused.status_code == 403
    assert "you are signed in as owner:alice" in html.unescape(refused.text)
    assert owner.get("/portal/admin/panel").status_code == 403

    for key in (ADMIN_TOKEN, create_api_key(app.state.synth.db, "root", "admin")):
        admin = signed_in(app, key)
        page = admin.get("/portal/admin")
        assert page.status_code == 200
        assert page.text.count("data-bucket=") == len(ALL_BUCKET_KEYS)  # a bar per bucket
        assert 'hx-trigger="every 5s"' in page.text
        assert "Admin dashboard" in admin.get("/").text


def test_sign_in_sends_back_only_to_a_path_on_this_server(app, owner_key) -> None:
    for target, expected in (
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/portal/datasets/bulk", "/portal/datasets/bulk"),
    ):
        client = TestClient(app)
        response = client.post(
            "/portal/signin",
            data={"api_key": owner_key, "csrf_token": csrf(client), "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == expected


# A form, and the JSON body POST /datasets is sent for the same input.
BAD_REQUESTS = [
    ({"bucket:female/adult": "abc"}, {"buckets": {"female/adult": "abc"}}),
    ({"bucket:female/adult": "-2"}, {"buckets": {"female/adult": -2}}),
    ({}, {"buckets": {}}),
    ({"bucket:male/senior": "5", "image_size": "9999"}, {"buckets": {"male/senior": 5},
                                                          "image_size": 9999}),
    ({"bucket:male/senior": "5", "image_size": "big"}, {"buckets": {"male/senior": 5},
                                                         "image_size": "big"}),
    ({"bucket:male/senior": "5", "format": "tar"}, {"buckets": {"male/senior": 5},
                                                    "format": "tar"}),
    ({"bucket:female/adult": "20000"}, {"buckets": {"female/adult": 20000}}),
]  # fmt: skip


@pytest.mark.parametrize(("form", "body"), BAD_REQUESTS)
def test_the_request_form_shows_the_apis_own_422_beside_the_field(
    app, owner_key, form, body
) -> None:
    client = signed_in(app, owner_key)
    api = client.post("/datasets", json={"exclusive": True, **body})
    assert api.status_code == 422
    expected = api.json()
    response = client.post(
        "/portal/datasets/new",
        data={"csrf_token": csrf(client, "/portal/datasets/new"), "exclusive": "on",
              "image_size": "256", **form},
    )  # fmt: skip
    assert response.status_code == 422
    field = expected["field"]
    where = field.replace("/", "-").replace(".", "-") + "-error"
    assert errors(response.text) == {where: expected["detail"]}
    # The field keeps what was typed, and says it is the one at fault.
    assert re.search(rf'aria-describedby="{where}"', response.text)
    assert request_counts(app.state.synth.db) == {}


@pytest.mark.parametrize(("form", "body"), BAD_REQUESTS)
def test_the_request_form_is_checked_as_it_is_typed_in_the_apis_words(
    app, owner_key, form, body
) -> None:
    client = signed_in(app, owner_key)
    expected = client.post("/datasets", json={"exclusive": True, **body}).json()
    token = csrf(client, "/portal/datasets/new")
    fields = {"csrf_token": token, "exclusive": "on", "image_size": "256"}
    checked = client.post("/portal/datasets/new/check", data={**fields, **form})
    assert checked.status_code == 200  # htmx swaps 2xx only
    [message] = re.findall(r'<p class="error live" data-field="([^"]*)">([^<]*)</p>', checked.text)
    assert message[0] == expected["field"]
    assert html.unescape(message[1]).endswith(expected["detail"])

    good = {**fields, "bucket:female/adult": "3", "bucket:male/child": "1", "format": "webdataset"}
    checked = client.post("/portal/datasets/new/check", data=good)
    assert (
        "Ready to request: 4 faces from 2 buckets, webdataset, 256 px, exclusive." in checked.text
    )
    assert request_counts(app.state.synth.db) == {}  # a check stores nothing
    refused = client.post("/portal/datasets/new/check", data={"bucket:female/adult": "3"})
    assert refused.status_code == 403  # and needs the form's CSRF token like any POST


def test_a_request_redirects_to_its_page_which_shows_the_link_once(app, owner_key) -> None:
    client = signed_in(app, owner_key)
    response = client.post(
        "/portal/datasets/new",
        data={"csrf_token": csrf(client, "/portal/datasets/new"), "bucket:female/adult": "3",
              "bucket:male/child": "0", "format": "webdataset", "image_size": "64"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303
    request_id = response.headers["location"].rsplit("/", 1)[1]
    row = get_request(app.state.synth.db, request_id)
    assert row.spec == {"buckets": {"female/adult": 3}, "format": "webdataset",
                        "image_size": 64, "exclusive": False}  # fmt: skip
    page = client.get(f"/portal/datasets/{request_id}")
    [link] = re.findall(r'id="download-link" readonly value="([^"]+)"', page.text)
    assert link.startswith(f"http://testserver/datasets/{request_id}/download/")
    assert 'data-status="pending"' in page.text and 'hx-trigger="every 2s"' in page.text
    assert "download-link" not in client.get(f"/portal/datasets/{request_id}").text  # once
    assert client.get(link).status_code == 409  # the API's link: not ready yet
    panel = client.get(f"/portal/datasets/{request_id}/status")
    assert panel.text.lstrip().startswith('<section id="status"')
    assert client.get("/portal/datasets/nope").status_code == 404
    found = client.get(f"/portal/datasets/find?id={request_id}", follow_redirects=False)
    assert found.headers["location"] == f"/portal/datasets/{request_id}"


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        (b"bucket,count\nfemale/adult,2\nmale/senior\n",
         "line 3: expected 'bucket,count', got 'male/senior'"),
        (b"female/adult,two\n", "line 1: count 'two' is not a whole number"),
        (b"bucket,count\n", "the CSV has no 'bucket,count' lines, e.g. 'female/adult,10'"),
        (b"\xff\xfe", "the CSV is not UTF-8 text"),
        (b"female/adult,1\n" * 70_000, "the CSV is over 1,048,576 bytes"),
    ],
)  # fmt: skip
def test_the_bulk_form_names_the_csv_line_at_fault(app, owner_key, csv, message) -> None:
    client = signed_in(app, owner_key)
    response = client.post(
        "/portal/datasets/bulk",
        data={"csrf_token": csrf(client, "/portal/datasets/bulk"), "image_size": "64"},
        files={"csv": ("faces.csv", csv, "text/csv")},
    )
    assert response.status_code == 422
    assert errors(response.text) == {"csv-error": message}
    assert request_counts(app.state.synth.db) == {}


def test_a_bulk_csv_becomes_one_request_checked_like_the_apis(app, owner_key) -> None:
    client = signed_in(app, owner_key)
    token = csrf(client, "/portal/datasets/bulk")
    unknown = client.post(
        "/portal/datasets/bulk",
        data={"csrf_token": token, "image_size": "64"},
        files={"csv": ("faces.csv", b"female/teenager,3\n", "text/csv")},
    )
    api = client.post("/datasets", json={"buckets": {"female/teenager": 3}}).json()
    assert unknown.status_code == 422
    assert list(errors(unknown.text).values()) == [api["detail"]]

    response = client.post(
        "/portal/datasets/bulk",
        data={"csrf_token": token, "image_size": "64", "exclusive": "on"},
        files={"csv": ("faces.csv", b"bucket,count\nmale/senior,2\nfemale/adult,1\n"
                                    b"male/senior,3\n", "text/csv")},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303
    row = get_request(app.state.synth.db, response.headers["location"].rsplit("/", 1)[1])
    assert row.spec["buckets"] == {"female/adult": 1, "male/senior": 5}
    assert row.spec["exclusive"] is True


def test_portal_pages_forbid_other_origins_scripts(app, owner_key) -> None:
    page = signed_in(app, owner_key).get("/portal/datasets/new")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)


def test_without_a_portal_secret_each_process_signs_with_its_own_and_says_so(caplog) -> None:
    from synth_pipelines.portal.sessions import portal_secret

    assert portal_secret({"SYNTH_PORTAL_SECRET": "set-here"}) == "set-here"
    assert not caplog.records
    first, second = portal_secret({}), portal_secret({})
    assert first != second and len(first) >= 32
    assert "SYNTH_PORTAL_SECRET is not set" in caplog.text
