"""The portal's tabular pages over HTTP without a browser (the forms work without JavaScript),
on SQLite and PostgreSQL: prompt → the draft schema as an editable table → an edit refused with
the API's own 422 beside its row → saved through the same path as PUT .../schema → confirmed →
the job really run by the tabular job sensor → the page shows it done with the first rows and
downloads identical to the API's; a fitted job from an uploaded sample → its inferred schema →
the quality and privacy report; a failed job's reason and retry; CSRF, ownership and the upload
limit."""

from __future__ import annotations

import copy
import html
import io
import re
import socket

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from synth_pipelines.api.app import create_app
from synth_pipelines.api.server import running_server
from synth_pipelines.core.security.accounts import create_api_key
from synth_pipelines.core.storage.models import TabularJob
from synth_pipelines.core.tabular.jobs import get_job
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import run_tabular_jobs_in_process
from tests.fitted_samples import fitted_settings_env, mixed_tables
from tests.test_fitted_jobs import csv_bytes, customers
from tests.test_portal import ADMIN_TOKEN, csrf, errors, signed_in

PROMPT = (
    "Generate 200 orders with order id, amount between 1 and 500, status one of new, paid or "
    "shipped, customer email. Make it realistic."
)
JOB_URL = re.compile(r"^/portal/tabular/([0-9a-f]{32})$")


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {
        **fitted_settings_env(),  # hashing embedder, one worker, 1 MB samples, a master key
        "SYNTH_TABULAR_MAX_ROWS": "100000",
        "SYNTH_ADMIN_TOKEN": ADMIN_TOKEN,
        "SYNTH_PORTAL_SECRET": "portal-test-secret",
    }


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def owner_key(app) -> str:
    return create_api_key(app.state.synth.db, "alice", "owner")


def job_count(app) -> int:
    with app.state.synth.db.session() as session:
        return session.query(TabularJob).count()


def draft(client: TestClient, prompt: str = PROMPT) -> str:
    """A job drafted through the prompt form; its id."""
    response = client.post(
        "/portal/tabular/new",
        data={"csrf_token": csrf(client, "/portal/tabular/new"), "prompt": prompt},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return JOB_URL.match(response.headers["location"]).group(1)


def editor_form(page: str) -> dict[str, str]:
    """The schema editor's fields as the page fills them (what a browser would send back)."""
    form = {}
    for tag in re.findall(r"<(?:input|select)[^>]*name=\"col-[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag).group(1)
        if 'type="checkbox"' in tag:
            if " checked" in tag:
                form[name] = "on"
        elif tag.startswith("<select"):
            continue
        else:
            form[name] = html.unescape(re.search(r'value="([^"]*)"', tag).group(1))
    for name, selected in re.findall(
        r'<select[^>]*name="(col-[^"]+)"[^>]*>(.*?)</select>', page, re.S
    ):
        form[name] = re.search(r'<option value="([^"]+)" selected>', selected).group(1)
    return form


def run_jobs(settings, instance, expect_success: bool = True) -> None:
    runs, _ = run_tabular_jobs_in_process(
        build_definitions(settings), instance, raise_on_error=False
    )
    assert [run.success for run in runs] == [expect_success]


def test_a_prompt_becomes_an_editable_draft_then_a_confirmed_job_run_to_its_rows(
    app, owner_key, settings, instance
) -> None:
    client = signed_in(app, owner_key)
    assert 'href="/portal/tabular"' in client.get("/").text  # in the nav
    job_id = draft(client)
    stored = get_job(app.state.synth.db, job_id)
    assert stored.owner == "alice" and stored.drafter == "offline"
    page = client.get(f"/portal/tabular/{job_id}")
    assert page.status_code == 200
    names = [c["name"] for c in stored.schema_json["columns"]]
    assert names == ["order_id", "amount", "status", "customer_email"]
    for warning in stored.schema_json["warnings"]:  # the drafter's warnings, for the person
        assert warning in html.unescape(page.text)
    form = editor_form(page.text)
    assert [form[f"col-{i}-name"] for i in range(4)] == names
    assert form["col-1-min"] == "1.0" and form["col-1-max"] == "500.0"
    assert form["col-2-categories"] == "new, paid, shipped"
    assert form["col-4-name"] == ""  # the blank row that adds a column

    # A range the schema refuses: the API's own 422 for the same body, beside the row.
    token = csrf(client, f"/portal/tabular/{job_id}")
    bad = {**form, "col-1-min": "900", "csrf_token": token}
    body = copy.deepcopy(stored.schema_json)
    body["columns"][1]["min"] = 900
    api = client.put(f"/tabular/jobs/{job_id}/schema", json=body)
    assert api.status_code == 422
    refused = client.post(f"/portal/tabular/{job_id}/schema", data=bad)
    assert refused.status_code == 422
    assert errors(refused.text) == {"col-1-error": api.json()["detail"]}
    assert "min (900) is greater than max (500.0)" in api.json()["detail"]
    assert editor_form(refused.text)["col-1-min"] == "900"  # what was typed stays
    assert re.search(r'id="col-1-name"[^>]*aria-describedby="col-1-error"', refused.text)
    assert get_job(app.state.synth.db, job_id).schema_json == stored.schema_json

    # A good edit goes through PUT's path: the range, a category dropped, the email column
    # removed, a nullable note added; what the form does not show is kept.
    good = {**form, "col-1-max": "250", "col-2-categories": "new, paid", "col-3-remove": "on",
            "col-4-name": "note", "col-4-type": "string", "col-4-nullable": "0.2",
            "csrf_token": token}  # fmt: skip
    saved = client.post(f"/portal/tabular/{job_id}/schema", data=good, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == f"/portal/tabular/{job_id}"
    schema = get_job(app.state.synth.db, job_id).schema_json
    columns = {c["name"]: c for c in schema["columns"]}
    assert list(columns) == ["order_id", "amount", "status", "note"]
    assert columns["amount"]["max"] == 250 and columns["amount"]["decimals"] == 2
    assert columns["order_id"]["unique"] is True and columns["order_id"]["semantic_type"] == "id"
    assert columns["status"]["categories"] == ["new", "paid"]
    assert columns["note"] == {"name": "note", "type": "string", "nullable": 0.2,
                               "unique": False, "source": "local"}  # fmt: skip

    # The row count goes through the confirm path: its message is the API's.
    api = client.post(f"/tabular/jobs/{job_id}/confirm", json={"total_rows": "many"})
    refused = client.post(
        f"/portal/tabular/{job_id}/confirm", data={"total_rows": "many", "csrf_token": token}
    )
    assert refused.status_code == 422
    assert errors(refused.text) == {"total_rows-error": api.json()["detail"]}
    confirmed = client.post(
        f"/portal/tabular/{job_id}/confirm",
        data={"total_rows": "300", "csrf_token": token},
        follow_redirects=False,
    )
    assert confirmed.status_code == 303
    assert get_job(app.state.synth.db, job_id).params["total_rows"] == 300
    page = client.get(f"/portal/tabular/{job_id}").text
    assert 'data-status="confirmed"' in page and 'hx-trigger="every 2s"' in page
    assert "save-schema" not in page  # a confirmed schema is fixed
    assert re.search(r'<progress id="progress" max="100" value="0.0">', page)
    # Saving again is the API's 409, as a page.
    late = client.post(f"/portal/tabular/{job_id}/schema", data=good)
    assert late.status_code == 409
    assert "only a draft's schema can be edited" in html.unescape(late.text)

    run_jobs(settings, instance)
    panel = client.get(f"/portal/tabular/{job_id}/status").text
    assert panel.lstrip().startswith('<section id="status"')
    assert 'data-status="completed"' in panel and "hx-get" not in panel  # polling stops
    assert re.search(r'<progress id="progress" max="100" value="100.0">', panel)
    assert "<span data-rows-done>300</span> of 300" in panel

    # The downloads are the API's, byte for byte; the preview is the table's first 20 rows.
    view = client.get(f"/tabular/jobs/{job_id}").json()
    parquet = client.get(f"/portal/tabular/{job_id}/download?format=parquet")
    assert parquet.status_code == 200
    assert parquet.content == client.get(view["download_url"]).content
    csv = client.get(f"/portal/tabular/{job_id}/download?format=csv")
    assert csv.content == client.get(view["download_url"].replace("parquet", "csv")).content
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == 300 and table.column_names == list(columns)
    [preview] = re.findall(r'<table class="preview".*?</table>', panel, re.S)
    headers = re.findall(r'<th scope="col">([^<]+)</th>', preview)
    assert headers == list(columns)
    cells = [
        [html.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in re.findall(r"<td>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(<td>.*?)</tr>", preview, re.S)
    ]
    expected = [
        ["null" if value is None else str(value) for value in row.values()]
        for row in table.slice(0, 20).to_pylist()
    ]
    assert cells == expected
    links = re.findall(r'href="(/portal/tabular/[^"]+/download\?format=\w+)"', panel)
    assert links == [f"/portal/tabular/{job_id}/download?format={f}" for f in ("parquet", "csv")]


def test_a_failed_job_shows_its_reason_and_a_retry(app, owner_key, settings, instance) -> None:
    client = signed_in(app, owner_key)
    job_id = draft(client, "Generate 10 accounts with a flag")
    page = client.get(f"/portal/tabular/{job_id}").text
    form = editor_form(page)
    token = csrf(client, f"/portal/tabular/{job_id}")
    # One boolean column: only 2 distinct rows exist, so 3 rows cannot be made.
    count = len(get_job(app.state.synth.db, job_id).schema_json["columns"])
    only_flag = {**form, "col-0-name": "flag", "col-0-type": "boolean", "col-0-min": "",
                 "col-0-max": "", "col-0-categories": "", "csrf_token": token}  # fmt: skip
    only_flag |= {f"col-{i}-remove": "on" for i in range(1, count)}
    saved = client.post(f"/portal/tabular/{job_id}/schema", data=only_flag, follow_redirects=False)
    assert saved.status_code == 303, errors(saved.text)
    client.post(f"/portal/tabular/{job_id}/confirm", data={"total_rows": "3", "csrf_token": token})
    run_jobs(settings, instance, expect_success=False)
    page = client.get(f"/portal/tabular/{job_id}").text
    reason = get_job(app.state.synth.db, job_id).error
    assert 'data-status="failed"' in page and reason in html.unescape(page)
    assert "only 2 distinct rows of 3" in reason
    retried = client.post(
        f"/portal/tabular/{job_id}/retry", data={"csrf_token": token}, follow_redirects=False
    )
    assert retried.status_code == 303
    assert get_job(app.state.synth.db, job_id).status == "confirmed"
    assert 'data-status="confirmed"' in client.get(f"/portal/tabular/{job_id}").text
    again = client.post(f"/portal/tabular/{job_id}/retry", data={"csrf_token": token})
    assert again.status_code == 409  # the API's words: only failed jobs can be retried
    assert "only failed jobs can be retried" in again.text


def test_an_uploaded_sample_shows_its_inferred_schema_then_its_report(
    app, owner_key, settings, instance
) -> None:
    client = signed_in(app, owner_key)
    token = csrf(client, "/portal/tabular/fitted")
    sample = customers(2000)
    response = client.post(
        "/portal/tabular/fitted",
        data={"csrf_token": token, "rows": "3000", "seed": "1"},
        files={"file": ("customers.csv", csv_bytes(sample), "text/csv")},
        follow_redirects=False,
    )
    assert response.status_code == 303, errors(response.text)
    job_id = JOB_URL.match(response.headers["location"]).group(1)
    job = get_job(app.state.synth.db, job_id)
    assert job.owner == "alice" and job.drafter == "fitted"
    page = client.get(f"/portal/tabular/{job_id}").text
    assert "Inferred schema" in page and "save-schema" not in page  # shown, to confirm
    assert "customers.csv</code>: 2000 rows, 1000 to fit and 1000 held out" in page
    shown = dict(re.findall(r'<tr data-column="(\w+)"><td>\w+</td><td>\w+</td><td>([^<]+)</td>',
                            page))  # fmt: skip
    assert list(shown) == list(sample.columns)
    assert shown["name"] == "full_name" and shown["email"] == "email"  # PII: never copied
    assert re.search(r'id="total_rows"[^>]*value="3000"', page)

    confirmed = client.post(
        f"/portal/tabular/{job_id}/confirm", data={"total_rows": "", "csrf_token": token}
    )
    assert confirmed.status_code == 200  # followed to the job's page
    run_jobs(settings, instance)
    page = client.get(f"/portal/tabular/{job_id}").text
    reports = get_job(app.state.synth.db, job_id).reports
    assert 'data-status="completed"' in page
    metric = dict(re.findall(r'<dd data-metric="(\w+)">([^<]+)</dd>', page))
    assert metric["quality"] == f"{reports['quality']['score'] * 100:.1f}%"
    assert metric["dcr_share"] == f"{reports['privacy']['dcr_share'] * 100:.1f}%"
    identical = reports["privacy"]["identical_matches"]
    assert metric["identical"].startswith(f"{identical} rows")
    assert metric["nndr"].count("/") == 2
    assert re.findall(r'data-check-passed="(\w+)"', page) == ["true", "true"]
    report = client.get(f"/portal/tabular/{job_id}/report")
    assert report.status_code == 200 and "income" in report.text
    assert "<span data-rows-done>3,000</span> of 3,000" in page


def test_a_post_without_the_csrf_token_is_refused_and_stores_nothing(app, owner_key) -> None:
    client = signed_in(app, owner_key)
    response = client.post("/portal/tabular/new", data={"prompt": PROMPT})
    assert response.status_code == 403 and "CSRF token" in response.text
    assert job_count(app) == 0
    job_id = draft(client)
    page = client.get(f"/portal/tabular/{job_id}").text
    refused = client.post(f"/portal/tabular/{job_id}/confirm", data={"total_rows": "10"})
    assert refused.status_code == 403
    assert get_job(app.state.synth.db, job_id).status == "draft"
    refused = client.post(
        f"/portal/tabular/{job_id}/schema", data={**editor_form(page), "csrf_token": "forged"}
    )
    assert refused.status_code == 403


def test_a_job_is_its_owners_and_the_admins_only(app, owner_key) -> None:
    alice = signed_in(app, owner_key)
    job_id = draft(alice)
    bob = signed_in(app, create_api_key(app.state.synth.db, "bob", "owner"))
    for path in ("", "/status", "/download?format=csv", "/report"):
        refused = bob.get(f"/portal/tabular/{job_id}{path}")
        assert refused.status_code == 404, path  # as a persona: not even its existence
        assert f"tabular job {job_id!r} does not exist" in html.unescape(refused.text)
    token = csrf(bob, "/portal/tabular/new")
    refused = bob.post(f"/portal/tabular/{job_id}/confirm", data={"csrf_token": token})
    assert refused.status_code == 404
    assert get_job(app.state.synth.db, job_id).status == "draft"
    assert job_id not in bob.get("/portal/tabular").text
    assert f'data-job="{job_id}"' in alice.get("/portal/tabular").text
    admin = signed_in(app, ADMIN_TOKEN)
    listing = admin.get("/portal/tabular").text
    assert f'data-job="{job_id}"' in listing and "<td>alice</td>" in listing
    assert admin.get(f"/portal/tabular/{job_id}").status_code == 200
    # A job drafted through the API's prompt path has no owner: whoever has its id sees it,
    # as GET /tabular/jobs/{id} serves it.
    anonymous = bob.post("/tabular/jobs", json={"prompt": PROMPT}).json()["id"]
    assert bob.get(f"/portal/tabular/{anonymous}").status_code == 200
    assert anonymous not in bob.get("/portal/tabular").text  # but it is nobody's to list
    # Without a session: the sign-in page.
    signed_out = TestClient(app).get(f"/portal/tabular/{job_id}", follow_redirects=False)
    assert signed_out.headers["location"] == f"/portal/signin?next=/portal/tabular/{job_id}"


def test_the_prompt_form_shows_the_apis_message(app, owner_key) -> None:
    client = signed_in(app, owner_key)
    api = client.post("/tabular/jobs", json={"prompt": "   "})
    assert api.status_code == 422
    response = client.post(
        "/portal/tabular/new",
        data={"csrf_token": csrf(client, "/portal/tabular/new"), "prompt": "   "},
    )
    assert response.status_code == 422
    assert errors(response.text) == {"prompt-error": api.json()["detail"]}
    assert job_count(app) == 0


def test_an_upload_over_the_limit_is_refused_with_the_limit(app, owner_key, settings) -> None:
    """Announced at 10 GB: refused before a byte is read, as POST /tabular/jobs is; a file just
    over the limit (within the multipart allowance): the use case's message beside the field."""
    client = signed_in(app, owner_key)
    token = csrf(client, "/portal/tabular/fitted")
    with running_server(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(
                b"POST /portal/tabular/fitted HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 10737418240\r\n\r\n"
            )
            reply = b""
            while not reply.rstrip().endswith(b"}"):
                part = conn.recv(65536)
                if not part:
                    break
                reply += part
    text = reply.decode()
    assert text.startswith("HTTP/1.1 422"), text
    assert "the upload is 10,737,418,240 bytes, over the sample limit of 1,048,576 " in text
    assert "(SYNTH_TABULAR_SAMPLE_MAX_MB)" in text

    limit = settings.tabular.sample_max_bytes
    big = b"a,b\n" + b"1,2\n" * (limit // 4 + 1)
    api = client.post(
        "/tabular/jobs",
        files={"file": ("big.csv", big, "text/csv")},
        headers={"Authorization": f"Bearer {owner_key}"},
    )
    assert api.status_code == 422
    response = client.post(
        "/portal/tabular/fitted",
        data={"csrf_token": token},
        files={"file": ("big.csv", big, "text/csv")},
    )
    assert response.status_code == 422
    assert list(errors(response.text).values()) == [api.json()["detail"]]
    assert job_count(app) == 0


def test_tables_joined_by_keys_show_each_schema_then_each_tables_rows_downloads_and_report(
    app, owner_key, settings, instance
) -> None:
    client = signed_in(app, owner_key)
    token = csrf(client, "/portal/tabular/fitted")
    samples = mixed_tables(seed=4, customers=500)
    response = client.post(
        "/portal/tabular/fitted",
        data={"csrf_token": token, "rows": "400", "seed": "1",
              "keys": "orders.customer_id=customers.customer_id\n"},
        files=[("file", (f"{name}.csv", csv_bytes(frame), "text/csv"))
               for name, frame in samples.items()],
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303, errors(response.text)
    job_id = JOB_URL.match(response.headers["location"]).group(1)
    page = client.get(f"/portal/tabular/{job_id}").text
    assert re.findall(r"<caption>Table (\w+)</caption>", page) == ["customers", "orders"]
    assert "save-schema" not in page  # fitted together: not edited one by one (the API's 409)
    client.post(f"/portal/tabular/{job_id}/confirm", data={"csrf_token": token})
    run_jobs(settings, instance)
    page = client.get(f"/portal/tabular/{job_id}").text
    assert 'data-status="completed"' in page
    view = client.get(f"/tabular/jobs/{job_id}").json()
    for name in ("customers", "orders"):
        for fmt in ("parquet", "csv"):
            link = f"/portal/tabular/{job_id}/download?format={fmt}&amp;table={name}"
            assert f'href="{link}"' in page
            mine = client.get(html.unescape(link))
            api = view["download_urls"][name].replace("format=parquet", f"format={fmt}")
            assert mine.status_code == 200 and mine.content == client.get(api).content
        assert f'data-table="{name}"' in page and f'data-report="{name}"' in page
        report = client.get(f"/portal/tabular/{job_id}/report?table={name}")
        assert report.status_code == 200 and "<html" in report.text.lower()
    assert re.findall(r'data-check-passed="(\w+)"', page) == ["true"] * 4
    missing = client.get(f"/portal/tabular/{job_id}/download?format=csv")
    assert missing.status_code == 422  # the API's: a multi-table job needs ?table=
    assert "has the tables customers, orders" in missing.json()["detail"]


def test_a_running_job_shows_its_rows_done_and_the_time_left(app, owner_key) -> None:
    """Progress as the run writes it (core's start_job and record_progress, what the asset
    calls per chunk): the bar, the rows done of the total and the estimate; a run whose lease
    lapsed reads as failed, with the API's reason and a retry."""
    from datetime import timedelta

    from synth_pipelines.core.clock import utcnow
    from synth_pipelines.core.tabular.jobs import record_progress, start_job

    db = app.state.synth.db
    client = signed_in(app, owner_key)
    job_id = draft(client)
    token = csrf(client, f"/portal/tabular/{job_id}")
    confirm = {"total_rows": "400", "csrf_token": token}
    assert client.post(f"/portal/tabular/{job_id}/confirm", data=confirm).status_code == 200
    start_job(db, job_id, "run-1")
    with db.session() as session:  # started a minute ago, as a run that has been going
        session.get(TabularJob, job_id).started_at = utcnow() - timedelta(seconds=60)
    record_progress(db, job_id, completed_chunks=1, total_chunks=4, rows_generated=110,
                    rows_deduplicated=10)  # fmt: skip
    panel = client.get(f"/portal/tabular/{job_id}/status").text
    view = client.get(f"/tabular/jobs/{job_id}").json()
    assert 'data-status="running"' in panel and 'hx-trigger="every 2s"' in panel
    assert f'value="{view["progress_percentage"]}"' in panel and view["progress_percentage"] == 25
    assert "<span data-rows-done>100</span> of 400" in panel
    left = int(re.search(r"About (\d+) s left", panel).group(1))
    assert 170 <= left <= 180  # three more chunks at a minute each
    assert "10 duplicate rows dropped" in panel

    with db.session() as session:  # the run was killed: its lease ran out
        session.get(TabularJob, job_id).lease_until = utcnow() - timedelta(seconds=1)
    panel = client.get(f"/portal/tabular/{job_id}/status").text
    assert 'data-status="failed"' in panel and "hx-get" not in panel
    assert html.escape(client.get(f"/tabular/jobs/{job_id}").json()["error"]) in panel
    assert 'id="retry"' in panel
