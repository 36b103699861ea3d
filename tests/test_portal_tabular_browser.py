"""The tabular pages in a real browser (headless Chromium) against a live uvicorn server and a
real Dagster instance: prompt → the draft schema edited in its table (a bad range refused
beside its row, then a good one saved) → confirmed with a row count → the progress panel →
the tabular job sensor's run → the page turns completed on its own, with the first rows and
the downloads. Every input labelled, contrast of at least 4.5:1. Screenshots go to
test-output/portal/tabular-*.png."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import httpx
import pyarrow.parquet as pq
import pytest

from synth_pipelines.api.app import create_app
from synth_pipelines.api.server import running_server
from synth_pipelines.core.security.accounts import create_api_key
from synth_pipelines.dagster_status import DagsterStatus
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import run_tabular_jobs_in_process
from synth_pipelines.settings import Settings
from tests.browser import headless_chromium, portal_settings, require_chromium
from tests.test_portal_browser import (
    _contrasts,
    _unlabelled,
    by_css,
    shot,
    sign_in,
    type_into,
    wait_for,
)

# One worker runs the module: one live server, one Dagster instance and one browser.
pytestmark = pytest.mark.xdist_group("portal_tabular_browser")
PROMPT = (
    "Generate 200 orders with order id, amount between 1 and 500, status one of new, paid or "
    "shipped, customer email. Make it realistic."
)


@dataclass
class Portal:
    url: str
    settings: Settings
    defs: dg.Definitions
    instance: dg.DagsterInstance
    owner_key: str


@pytest.fixture(scope="module")
def tabular_portal(tmp_path_factory) -> Iterator[Portal]:
    """The API (and its portal) on a free port, with the factory DB, objects and a Dagster
    instance under one temporary SYNTH_HOME; an owner's API key."""
    require_chromium()  # before the server starts: nothing to do without a browser
    home = tmp_path_factory.mktemp("portal_tabular") / "synth_home"
    with portal_settings(
        home, SYNTH_TABULAR_EMBEDDER="hashing", SYNTH_TABULAR_WORKERS="1",
        SYNTH_TABULAR_CHUNK_SIZE="500", SYNTH_PORTAL_SECRET="browser-tabular-secret",
    ) as settings:  # fmt: skip
        app = create_app(settings, orchestrator=DagsterStatus())
        owner_key = create_api_key(app.state.synth.db, "alice", "owner")
        with dg.DagsterInstance.get() as instance, running_server(app) as url:
            yield Portal(url, settings, build_definitions(settings), instance, owner_key)


@pytest.fixture(scope="module")
def page(tabular_portal) -> Iterator[Any]:
    with headless_chromium() as driver:
        yield driver


def accessible(page, where: str) -> None:
    assert _unlabelled(page) == [], where
    low = [(round(ratio, 2), html) for ratio, html in _contrasts(page) if ratio < 4.5]
    assert low == [], where


def test_a_prompt_is_edited_confirmed_and_generated_and_the_page_shows_its_rows(
    tabular_portal, page
) -> None:
    portal = tabular_portal
    sign_in(page, portal, portal.owner_key, then="/portal/tabular/new")
    accessible(page, "new")
    type_into(page, "prompt", PROMPT)
    shot(page, "tabular-new")
    by_css(page, "main button[type=submit]")[0].click()
    wait_for(page, lambda d: by_css(d, "#col-0-name"), "no draft schema")
    job_id = page.current_url.rsplit("/", 1)[1]
    assert "not read: 'Make it realistic.'" in by_css(page, "#warnings")[0].text
    names = [by_css(page, f"#col-{i}-name")[0].get_attribute("value") for i in range(4)]
    assert names == ["order_id", "amount", "status", "customer_email"]
    accessible(page, "draft")
    shot(page, "tabular-draft")

    # A range the schema refuses: the API's message beside the row, what was typed kept.
    type_into(page, "col-1-min", "900")
    by_css(page, "#save-schema")[0].click()
    [message] = wait_for(page, lambda d: by_css(d, "#col-1-error"), "no message beside the row")
    assert "min (900) is greater than max (500.0)" in message.text
    assert by_css(page, "#col-1-min")[0].get_attribute("value") == "900"
    accessible(page, "draft with a message")
    shot(page, "tabular-draft-error")

    type_into(page, "col-1-min", "10")
    type_into(page, "col-1-max", "99")
    type_into(page, "col-4-name", "note")
    type_into(page, "col-4-nullable", "0.5")
    by_css(page, "#col-3-remove")[0].click()
    by_css(page, "#save-schema")[0].click()
    wait_for(
        page,
        lambda d: d.current_url.endswith(job_id) and not by_css(d, "#col-1-error"),
        "the good edit was not saved",
    )
    names = [by_css(page, f"#col-{i}-name")[0].get_attribute("value") for i in range(4)]
    assert names == ["order_id", "amount", "status", "note"]

    type_into(page, "total_rows", "2000")
    by_css(page, "#confirm")[0].click()
    wait_for(page, lambda d: by_css(d, "[data-status]"), "no status panel")
    assert page.current_url.endswith(f"/portal/tabular/{job_id}")
    assert by_css(page, "[data-status]")[0].text == "confirmed"
    assert by_css(page, "#progress")[0].get_attribute("value") == "0"
    assert by_css(page, "#status")[0].get_attribute("hx-get").endswith(f"/{job_id}/status")
    accessible(page, "confirmed")
    shot(page, "tabular-progress")
    page.execute_script("window.notReloaded = true")

    runs, _ = run_tabular_jobs_in_process(portal.defs, portal.instance)
    assert [run.success for run in runs] == [True]
    wait_for(
        page,
        lambda d: by_css(d, "[data-status]")[0].text == "completed",
        "the page did not turn completed on its own",
    )
    assert page.execute_script("return window.notReloaded") is True  # htmx swapped it in
    assert by_css(page, "#status")[0].get_attribute("hx-get") is None  # polling has stopped
    assert by_css(page, "#progress")[0].get_attribute("value") == "100"
    assert "2,000 of 2,000" in by_css(page, "label[for=progress]")[0].text
    rows = by_css(page, "table.preview tbody tr")
    assert len(rows) == 20
    headers = [th.text for th in by_css(page, "table.preview th")]
    assert headers == ["order_id", "amount", "status", "note"]
    accessible(page, "done")
    shot(page, "tabular-done")

    # The page's Parquet link: the browser's cookie, the job's table.
    link = by_css(page, "#downloads a[data-format=parquet]")[0].get_attribute("href")
    cookies = {c["name"]: c["value"] for c in page.get_cookies()}
    response = httpx.get(link, cookies=cookies)
    assert response.status_code == 200
    table = pq.read_table(io.BytesIO(response.content))
    assert table.num_rows == 2000
    first = [cell.text for cell in rows[0].find_elements("tag name", "td")]
    assert first[0] == str(table.column("order_id")[0].as_py())
    assert all(10 <= value <= 99 for value in table.column("amount").to_pylist())

    # The other tabular pages: the upload form and the job list, labelled and legible too.
    page.get(portal.url + "/portal/tabular/fitted")
    accessible(page, "fitted")
    shot(page, "tabular-fitted")
    page.get(portal.url + "/portal/tabular")
    assert by_css(page, f"[data-job='{job_id}'] .badge")[0].text == "completed"
    accessible(page, "list")
    shot(page, "tabular-list")
