"""The image set pages in a real browser (headless Chromium) against a live uvicorn server and a
real Dagster instance: a bad count refused beside its field → a real set registered through the
form → its page pending and polling → the image set line's run → the page turns ready on its own
with the validation report, the profile report and its plots (loaded through the owner-checked
routes) and the exports. Every input labelled, contrast of at least 4.5:1. Screenshots go to
test-output/portal/imageset-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from synth_pipelines.api.app import create_app
from synth_pipelines.api.server import running_server
from synth_pipelines.core.imagesets.demo_images import write_demo_set
from synth_pipelines.core.security.accounts import create_api_key
from synth_pipelines.dagster_status import DagsterStatus
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import run_image_sets_in_process
from synth_pipelines.settings import Settings
from tests.browser import headless_chromium, portal_settings, require_chromium
from tests.test_portal_browser import (
    SCREENSHOTS,
    _contrasts,
    _unlabelled,
    by_css,
    shot,
    sign_in,
    type_into,
)
from tests.test_portal_browser import wait_for as _wait_for

# One worker runs the module: one live server, one Dagster instance and one browser.
pytestmark = pytest.mark.xdist_group("portal_imagesets_browser")


@dataclass
class Portal:
    url: str
    settings: Settings
    defs: dg.Definitions
    instance: dg.DagsterInstance
    admin_key: str
    real_set: Path


@pytest.fixture(scope="module")
def imagesets_portal(tmp_path_factory) -> Iterator[Portal]:
    """The API (and its portal) on a free port, with the factory DB, objects and a Dagster
    instance under one temporary SYNTH_HOME; an admin's API key (a set on the server's disk
    needs one) and a real demo set on that disk."""
    require_chromium()  # before the server starts: nothing to do without a browser
    root = tmp_path_factory.mktemp("portal_imagesets")
    real_set = write_demo_set(root / "street", count=24, seed=1)
    with portal_settings(
        root / "synth_home", SYNTH_IMAGES_COUNT="16", SYNTH_IMAGES_OCR="off",
        SYNTH_PORTAL_SECRET="browser-imagesets-secret",
    ) as settings:  # fmt: skip
        app = create_app(settings, orchestrator=DagsterStatus())
        admin_key = create_api_key(app.state.synth.db, "root", "admin")
        with dg.DagsterInstance.get() as instance, running_server(app) as url:
            defs = build_definitions(settings)
            yield Portal(url, settings, defs, instance, admin_key, real_set)


@pytest.fixture(scope="module")
def page(imagesets_portal) -> Iterator[Any]:
    with headless_chromium() as driver:
        yield driver


def wait_for(driver, condition, message: str, timeout: float = 60) -> Any:
    return _wait_for(driver, condition, message, timeout)


def accessible(page, where: str) -> None:
    assert _unlabelled(page) == [], where
    low = [(round(ratio, 2), html) for ratio, html in _contrasts(page) if ratio < 4.5]
    assert low == [], where


def test_a_set_is_registered_run_and_its_page_shows_its_reports(imagesets_portal, page) -> None:
    portal = imagesets_portal
    sign_in(page, portal, portal.admin_key, then="/portal/imagesets/new")
    accessible(page, "new")

    # A count the registry refuses: its message beside the field, what was typed kept.
    type_into(page, "source", str(portal.real_set))
    type_into(page, "count", "0")
    by_css(page, "#format-parquet")[0].click()
    by_css(page, "#format-coco")[0].click()
    by_css(page, "#register")[0].click()
    [message] = wait_for(page, lambda d: by_css(d, "#count-error"), "no message beside count")
    assert "count must be 1 to 10,000,000, got 0" in message.text
    assert by_css(page, "#source")[0].get_attribute("value") == str(portal.real_set)
    assert by_css(page, "#format-coco")[0].is_selected()
    accessible(page, "new with a message")
    shot(page, "imageset-form-error")

    type_into(page, "count", "16")
    type_into(page, "name", "street")
    by_css(page, "#register")[0].click()
    wait_for(page, lambda d: by_css(d, "[data-status]"), "no status panel")
    set_id = page.current_url.rsplit("/", 1)[1]
    assert by_css(page, "[data-status]")[0].text == "pending"
    assert by_css(page, "#status")[0].get_attribute("hx-get").endswith(f"/{set_id}/status")
    accessible(page, "pending")
    shot(page, "imageset-pending")
    page.execute_script("window.notReloaded = true")

    runs, _ = run_image_sets_in_process(portal.defs, portal.instance)
    assert [run.success for run in runs] == [True]
    wait_for(
        page,
        lambda d: by_css(d, "[data-status]")[0].text == "ready",
        "the page did not turn ready on its own",
    )
    assert page.execute_script("return window.notReloaded") is True  # htmx swapped it in
    assert by_css(page, "#status")[0].get_attribute("hx-get") is None  # polling has stopped

    verdicts = {el.get_attribute("data-check"): el.find_element("css selector", "[data-verdict]")
                .text for el in by_css(page, "[data-check]")}  # fmt: skip
    assert set(verdicts) == {"quality", "fidelity", "privacy"}
    assert verdicts["privacy"] == "passed"  # the simulator copies nothing
    assert by_css(page, "[data-profile=images]")[0].text == "24"
    assert {row.get_attribute("data-label") for row in by_css(page, "#balance tr[data-label]")} \
        == {"documents", "photos", "textures"}  # fmt: skip
    assert {el.get_attribute("data-format") for el in by_css(page, "#exports li")} == {
        "parquet", "coco"
    }  # fmt: skip

    # Each plot drawn in the page (scrolled to: they load lazily): the browser's session
    # passes the routes' owner check.
    def plots_drawn(driver) -> bool:
        return driver.execute_script(
            "const plots = [...document.querySelectorAll('figure.plot img')];"
            "plots.forEach(i => i.scrollIntoView());"
            "return plots.every(i => i.complete && i.naturalWidth > 0)"
        )

    wait_for(page, plots_drawn, "a plot did not load")
    page.execute_script("window.scrollTo(0, 0)")
    assert len(by_css(page, "figure.plot img")) == 3
    accessible(page, "ready")
    shot(page, "imageset-ready")
    by_css(page, "#validation-heading")[0].location_once_scrolled_into_view  # noqa: B018
    page.save_screenshot(str(SCREENSHOTS / "imageset-validation.png"))

    page.get(portal.url + "/portal/imagesets")
    assert by_css(page, f"[data-set='{set_id}'] .badge")[0].text == "ready"
    accessible(page, "list")
    shot(page, "imageset-list")
