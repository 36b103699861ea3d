"""/docs (Swagger UI) and /redoc work offline: their pages name only this server's assets, the
assets are served, and a real headless Chromium with no network renders both."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from synth_pipelines.api.app import create_app
from synth_pipelines.api.server import running_server
from tests.browser import headless_chromium

TITLE = "synth_pipelines"
# Every URL a docs page names: <script src>, <link href>, ReDoc's spec-url, Swagger's `url:`.
REFERENCED = re.compile(r"""(?:src|href|spec-url)="([^"]*)"|\burl: '([^']*)'""")
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "json"}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'factory.db'}"  # the docs do not depend on the database


@pytest.fixture
def live_server(settings) -> Iterator[str]:
    with running_server(create_app(settings)) as url:
        yield url


def _referenced(html: str) -> list[str]:
    return [src or url for src, url in REFERENCED.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_names_only_this_servers_assets_and_each_is_served(live_server, page) -> None:
    response = httpx.get(live_server + page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.search(r"https?:|//[\w.-]", html), html  # no other host, not even scheme-less
    urls = _referenced(html)
    assert "/openapi.json" in urls and any(url.startswith("/static/") for url in urls), urls
    for url in urls:
        assert url.startswith("/"), url
        asset = httpx.get(live_server + url)
        assert asset.status_code == 200, url
        expected = CONTENT_TYPES[Path(url).suffix]
        assert expected in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 500, url


def test_the_pages_follow_the_root_path_behind_a_proxy(settings) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(create_app(settings), root_path="/api")
    for page in ("/docs", "/redoc"):
        urls = _referenced(client.get("/api" + page).text)
        assert urls and all(url.startswith("/api/") for url in urls), urls
        assert all(client.get(url).status_code == 200 for url in urls), urls


def test_every_reference_in_the_openapi_document_resolves(live_server) -> None:
    """ReDoc refuses the whole document over one dangling $ref (e.g. "#/$defs/Column")."""
    spec = httpx.get(f"{live_server}/openapi.json").json()

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    found = set(refs(spec))
    assert "#/components/schemas/Column" in found  # the tabular schema body's nested model
    for ref in found:
        assert ref.startswith("#/"), ref
        target: Any = spec
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(target, dict) and part in target, f"{ref} names nothing"
            target = target[part]


@pytest.fixture
def browser() -> Iterator[Any]:
    with headless_chromium() as driver:
        yield driver


def _requests_sent(driver) -> set[str]:
    """The http(s) and ws(s) URLs the page asked the network for since the last call; those the
    page's own Content-Security-Policy refused never left the browser."""
    sent: dict[str, str] = {}
    refused: set[str] = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            sent[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason") == "csp":
            refused.add(params["requestId"])
    return {
        url for rid, url in sent.items() if rid not in refused and re.match(r"(https?|wss?):", url)
    }


def _render(driver, url: str, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(
        lambda d: any(TITLE in e.text for e in d.find_elements(By.CSS_SELECTOR, selector)),
        message=f"{url} rendered no {selector} containing {TITLE!r}",
    )
    return driver.find_elements(By.CSS_SELECTOR, selector)


def _page_errors(driver) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "Content Security Policy" not in entry["message"]
    ]


def test_swagger_ui_and_redoc_render_in_a_browser_with_no_network(live_server, browser) -> None:
    from selenium.webdriver.common.by import By

    operations = sum(
        method in ("get", "put", "post", "delete", "patch")
        for item in httpx.get(f"{live_server}/openapi.json").json()["paths"].values()
        for method in item
    )
    assert operations >= 20

    _render(browser, f"{live_server}/docs", ".swagger-ui .info .title")
    assert len(browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock")) == operations
    assert not _page_errors(browser)
    sent = _requests_sent(browser)
    assert f"{live_server}/static/swagger-ui/swagger-ui-bundle.js" in sent
    assert all(url.startswith(live_server + "/") for url in sent), sent

    [title] = _render(browser, f"{live_server}/redoc", ".api-info h1")
    assert title.text == f"{TITLE} (0.1.0)"
    rendered = browser.find_elements(By.CSS_SELECTOR, "[data-section-id^='operation/']")
    assert len(rendered) == operations
    assert not _page_errors(browser)
    sent = _requests_sent(browser)
    assert f"{live_server}/static/redoc/redoc.standalone.js" in sent
    assert all(url.startswith(live_server + "/") for url in sent), sent
