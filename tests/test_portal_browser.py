"""The portal in a real browser (headless Chromium), against one live uvicorn server and a real
Dagster instance for the module: sign in → request → sensor tick → packaging run → the page turns
ready on its own → the one-time link downloads an archive that verifies; backorders, the bulk
form, the admin dashboard refreshing itself and refused to an owner, CSRF, labels, keyboard use
and contrast. Screenshots of every page go to test-output/portal/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from synth_pipelines.api.app import create_app
from synth_pipelines.api.server import running_server
from synth_pipelines.core.delivery.verify import verify_archive
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.security.accounts import create_api_key
from synth_pipelines.dagster_status import DagsterStatus
from synth_pipelines.definitions import build_definitions
from synth_pipelines.lines.datasets.sensors import PACKAGE_JOB
from synth_pipelines.partitions import dataset_requests
from synth_pipelines.settings import Settings
from tests.browser import headless_chromium, portal_settings, require_chromium
from tests.helpers import evaluate, refill

# One worker runs the module: one live server, one Dagster instance and one browser.
pytestmark = pytest.mark.xdist_group("portal_browser")
ADMIN_TOKEN = "browser-admin-token-0123456789"
SCREENSHOTS = Path(__file__).parents[1] / "test-output" / "portal"
FEMALE_ADULT = Bucket("female", "adult")


@dataclass
class Portal:
    url: str
    settings: Settings
    defs: dg.Definitions
    instance: dg.DagsterInstance
    owner_key: str

    def package_pending(self) -> list[str]:
        """One tick of the request sensor, then the packaging run of each request it asked for."""
        sensor = self.defs.resolve_sensor_def("dataset_request_sensor")
        result = evaluate(sensor, self.instance, self.defs)
        packaged = []
        for run in result.run_requests:
            self.instance.add_dynamic_partitions(dataset_requests.name, [run.partition_key])
            self.defs.resolve_job_def(PACKAGE_JOB).execute_in_process(
                partition_key=run.partition_key, instance=self.instance
            )
            packaged.append(run.partition_key)
        return packaged


@pytest.fixture(scope="module")
def portal(tmp_path_factory) -> Iterator[Portal]:
    """The API (and its portal) on a free port, with the factory DB, objects and a Dagster
    instance under one temporary SYNTH_HOME; an owner's API key."""
    require_chromium()  # before the server starts: nothing to do without a browser
    home = tmp_path_factory.mktemp("portal") / "synth_home"
    with portal_settings(
        home, SYNTH_TARGET_PER_BUCKET="4", SYNTH_FACE_SIZE="64", SYNTH_ADMIN_TOKEN=ADMIN_TOKEN,
        SYNTH_PORTAL_SECRET="browser-test-secret",
    ) as settings:  # fmt: skip
        app = create_app(settings, orchestrator=DagsterStatus())
        owner_key = create_api_key(app.state.synth.db, "alice", "owner")
        with dg.DagsterInstance.get() as instance, running_server(app) as url:
            yield Portal(url, settings, build_definitions(settings), instance, owner_key)


@pytest.fixture(scope="module")
def browser(portal) -> Iterator[Any]:
    with headless_chromium() as driver:
        yield driver


@pytest.fixture
def page(browser, portal) -> Any:
    """The browser, signed out (no cookies), for one test."""
    browser.get(portal.url + "/portal/signin")
    browser.delete_all_cookies()
    return browser


def shot(driver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    metrics = {"width": 1280, "height": min(height, 2400), "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)  # the whole page
    try:
        driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def wait_for(driver, condition, message: str, timeout: float = 30) -> Any:
    """`condition(driver)` once it is true; an element htmx swapped out meanwhile is asked again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(
        driver, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
    )
    return wait.until(condition, message=message)


def by_css(driver, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def sign_in(driver, portal: Portal, key: str, then: str = "/") -> None:
    """Sign in by keyboard: the key typed into the focused field, then Enter."""
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{portal.url}/portal/signin?next={then}")
    active = driver.switch_to.active_element
    assert active.get_attribute("id") == "api_key"  # the field has the focus on arrival
    active.send_keys(key, Keys.ENTER)
    wait_for(driver, lambda d: "/portal/signin" not in d.current_url, "sign-in did not redirect")


def type_into(driver, element_id: str, text: str) -> None:
    [field] = by_css(driver, f"#{element_id}")
    field.clear()
    field.send_keys(text)


def errors(driver) -> list[str]:
    return [element.text for element in by_css(driver, ".error")]


def test_a_request_is_packaged_and_its_one_time_link_downloads_a_verified_archive(
    portal, page, tmp_path
) -> None:
    from selenium.webdriver.common.keys import Keys

    refill(portal.defs, portal.instance, FEMALE_ADULT, 4)
    sign_in(page, portal, portal.owner_key, then="/portal/datasets/new")
    shot(page, "request-form")
    type_into(page, "bucket-female-adult", "3")
    type_into(page, "image_size", "64")
    by_css(page, "#image_size")[0].send_keys(Keys.ENTER)  # submitted by keyboard
    wait_for(page, lambda d: re.search(r"/portal/datasets/[0-9a-f]{32}$", d.current_url), "no page")
    request_id = page.current_url.rsplit("/", 1)[1]
    link = by_css(page, "#download-link")[0].get_attribute("value")
    assert link == f"{portal.url}/datasets/{request_id}/download/" + link.rsplit("/", 1)[1]
    assert by_css(page, "[data-status]")[0].text == "pending"
    by_css(page, "[data-copy=download-link]")[0].click()
    wait_for(page, lambda d: by_css(d, ".copied")[0].text, "the copy button said nothing")
    shot(page, "request-pending")
    page.execute_script("window.notReloaded = true")

    assert request_id in portal.package_pending()
    wait_for(
        page,
        lambda d: by_css(d, "[data-status]")[0].text == "ready",
        "the page did not turn ready on its own",
    )
    assert page.execute_script("return window.notReloaded") is True  # htmx swapped it in
    assert by_css(page, "#status")[0].get_attribute("hx-get") is None  # polling has stopped
    shot(page, "request-ready")

    archive = tmp_path / "dataset.zip"
    response = httpx.get(link)
    assert response.status_code == 200
    archive.write_bytes(response.content)
    manifest = verify_archive(archive)
    assert manifest["request_id"] == request_id
    page.refresh()
    assert by_css(page, "#download-link") == []  # shown once
    assert re.search(r"Downloads\s+1\b", by_css(page, "dl")[0].text)


def test_a_shortfall_shows_backordered_with_the_reason(portal, page) -> None:
    sign_in(page, portal, portal.owner_key, then="/portal/datasets/new")
    type_into(page, "bucket-male-senior", "2")
    by_css(page, "button[type=submit]")[-1].click()
    wait_for(page, lambda d: by_css(d, "[data-status]"), "no request page")
    request_id = page.current_url.rsplit("/", 1)[1]
    assert request_id in portal.package_pending()
    wait_for(page, lambda d: by_css(d, "[data-status]")[0].text == "backordered", "no backorder")
    warning = wait_for(page, lambda d: by_css(d, ".warning"), "no reason shown")
    assert "male/senior short by 2" in warning[0].text
    shot(page, "request-backordered")


def test_the_forms_show_the_apis_messages_beside_their_fields(portal, page, tmp_path) -> None:
    sign_in(page, portal, portal.owner_key, then="/portal/datasets/new")
    type_into(page, "bucket-female-adult", "abc")
    # checked while typing, before any submit, in the API's words
    live = wait_for(page, lambda d: by_css(d, "#live-check .error"), "no live message")
    assert live[0].text.endswith('Input should be a valid integer, got "abc"')
    type_into(page, "bucket-female-adult", "2")
    ready = wait_for(page, lambda d: by_css(d, "#live-check .ok"), "no live confirmation")
    assert ready[0].text.startswith("Ready to request: 2 faces from 1 bucket")
    shot(page, "request-form-live-check")
    type_into(page, "bucket-female-adult", "abc")
    by_css(page, "button[type=submit]")[-1].click()
    [message] = wait_for(page, lambda d: by_css(d, "#buckets-female-adult-error"), "no message")
    assert message.text == 'buckets.female/adult: Input should be a valid integer, got "abc"'
    assert by_css(page, "#bucket-female-adult")[0].get_attribute("value") == "abc"
    shot(page, "request-form-errors")

    page.get(portal.url + "/portal/datasets/bulk")
    shot(page, "bulk-form")
    csv = tmp_path / "faces.csv"
    csv.write_text("bucket,count\nmale/child,2\nfemale/senior,1\n")
    by_css(page, "#csv")[0].send_keys(str(csv))
    by_css(page, "button[type=submit]")[-1].click()
    wait_for(page, lambda d: by_css(d, "[data-status]"), "the bulk request has no page")
    rows = [row.text for row in by_css(page, "tbody tr")]
    assert rows == ["female/senior 1 \u2013", "male/child 2 \u2013"]  # none delivered yet


def test_a_form_without_its_csrf_token_is_refused(portal, page) -> None:
    sign_in(page, portal, portal.owner_key, then="/portal/datasets/new")
    page.execute_script("document.querySelector('main [name=csrf_token]').remove()")
    type_into(page, "bucket-female-adult", "1")
    by_css(page, "button[type=submit]")[-1].click()
    wait_for(page, lambda d: "Not allowed" in d.find_element("tag name", "h1").text, "not refused")
    assert "CSRF token" in errors(page)[0]


def test_the_admin_dashboard_is_refused_to_an_owner_and_refreshes_itself_for_an_admin(
    portal, page
) -> None:
    sign_in(page, portal, portal.owner_key, then="/portal/admin")
    assert "you are signed in as owner:alice" in errors(page)[0]
    assert not [a for a in by_css(page, "nav a") if "Admin" in a.text]
    shot(page, "admin-refused")
    by_css(page, ".signout button")[0].click()  # sign out
    wait_for(page, lambda d: d.current_url.endswith("/portal/signin"), "not signed out")
    page.get(portal.url + "/portal/admin")
    assert "/portal/signin?next=/portal/admin" in page.current_url

    sign_in(page, portal, ADMIN_TOKEN, then="/portal/admin")
    bars = by_css(page, ".chart [data-bucket]")
    assert len(bars) == len(portal.settings.faces.targets)
    assert by_css(page, "[data-health=database] .badge")[0].text == "ok"
    assert by_css(page, "[data-health=dagster] .badge")[0].text == "ok"
    queue = int(by_css(page, "[data-metric=queue]")[0].text)
    shot(page, "admin-dashboard")
    page.execute_script("window.notReloaded = true")
    httpx.post(portal.url + "/datasets", json={"buckets": {"male/adult": 1}}).raise_for_status()
    wait_for(
        page,
        lambda d: int(by_css(d, "[data-metric=queue]")[0].text) == queue + 1,
        "the dashboard did not refresh on its own",
        timeout=20,
    )
    assert page.execute_script("return window.notReloaded") is True


def _unlabelled(driver) -> list[str]:
    """Visible inputs, selects and text areas with no <label for> and no aria-label."""
    return driver.execute_script(
        """
        return [...document.querySelectorAll('input, select, textarea')]
          .filter(e => e.type !== 'hidden')
          .filter(e => !(e.id && document.querySelector(`label[for="${e.id}"]`))
                       && !e.getAttribute('aria-label'))
          .map(e => e.outerHTML);
        """
    )


def _contrasts(driver) -> list[tuple[float, str]]:
    """(contrast ratio, element) for every element with its own text, against the first opaque
    background behind it (WCAG 2 relative luminance)."""
    return driver.execute_script(
        """
        const rgb = s => s.match(/[\\d.]+/g).map(Number);
        const lum = ([r, g, b]) => [r, g, b].map(c => c / 255)
          .map(c => c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4)
          .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
        const background = e => {
          for (; e; e = e.parentElement) {
            const c = rgb(getComputedStyle(e).backgroundColor);
            if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
          }
          return [255, 255, 255];
        };
        return [...document.querySelectorAll('body *')]
          .filter(e => [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
          .filter(e => e.offsetParent !== null && !e.closest('svg'))
          .map(e => {
            const [a, b] = [lum(rgb(getComputedStyle(e).color)), lum(background(e))];
            return [(Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), e.outerHTML.slice(0, 80)];
          });
        """
    )


def test_every_page_labels_its_inputs_has_contrast_and_works_by_keyboard(portal, page) -> None:
    from selenium.webdriver.common.keys import Keys

    page.get(portal.url + "/portal/signin")
    shot(page, "sign-in")
    pages = ["/portal/signin"]
    sign_in(page, portal, ADMIN_TOKEN)
    shot(page, "home")
    pages += ["/", "/portal/datasets/new", "/portal/datasets/bulk", "/portal/admin"]
    for path in pages:
        page.get(portal.url + path)
        assert _unlabelled(page) == [], path
        low = [(round(ratio, 2), html) for ratio, html in _contrasts(page) if ratio < 4.5]
        assert low == [], path

    # The request form by keyboard alone: Tab reaches every field and the button, in order.
    page.get(portal.url + "/portal/datasets/new")
    reached = []
    for _ in range(60):
        page.switch_to.active_element.send_keys(Keys.TAB)
        reached.append(page.switch_to.active_element.get_attribute("id") or "")
        if page.execute_script("return document.activeElement.matches('main [type=submit]')"):
            break
    fields = [f"bucket-{key.replace('/', '-')}" for key in portal.settings.faces.targets]
    assert [r for r in reached if r.startswith("bucket-")] == fields
    assert reached[-4:-1] == ["format", "image_size", "exclusive"]
    page.switch_to.active_element.send_keys(Keys.ENTER)  # the button, pressed by keyboard
    wait_for(page, lambda d: by_css(d, "#buckets-error"), "no message for an empty request")
