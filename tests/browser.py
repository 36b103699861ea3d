"""Headless Chromium for the browser tests (Debian's chromium + chromium-driver, which `make test`
and .ci/run install): skipped with the reason where they are missing, a failure on CI."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def require_chromium() -> None:
    """Skip (fail on CI) when Chromium or its driver is not installed."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        reason = f"{', '.join(missing)} missing: apt-get install chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (.ci/run installs them)")
        pytest.skip(reason)


@contextmanager
def headless_chromium(window: tuple[int, int] = (1280, 1000)) -> Iterator[Any]:
    """A headless Chromium through chromedriver, with every host but 127.0.0.1 unreachable: no
    name resolves and every other connection goes to a closed proxy port."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={window[0]},{window[1]}",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=127.0.0.1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def portal_settings(home: Path, **env: str) -> Iterator[Any]:
    """Settings for a live portal under `home` (a SYNTH_HOME of its own, with a Dagster home
    and a SQLite factory DB in it, no SYNTH_* of the caller's leaking in), `env` on top; the
    environment is restored afterwards. Yields Settings."""
    from synth_pipelines.local_instance import prepare_dagster_home
    from synth_pipelines.settings import Settings

    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if key.startswith("SYNTH_") and key != "SYNTH_TEST_PG":
                patch.delenv(key)
        home.mkdir(parents=True, exist_ok=True)
        base = {
            "SYNTH_HOME": str(home),
            "DAGSTER_HOME": str(prepare_dagster_home(home / "dagster")),
            "SYNTH_DATABASE_URL": f"sqlite:///{home / 'factory.db'}",
        }
        for name, value in {**base, **env}.items():
            patch.setenv(name, value)
        yield Settings.from_env()
