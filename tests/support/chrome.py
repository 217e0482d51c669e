"""A real browser for tests: Debian's chromium driven by chromedriver through selenium, headless.

Skipped with a visible reason where chromium or chromedriver is missing, except in CI (CI=true, or
CORESDK_TEST_REQUIRE_TOOLS=1 as .ci/run sets after installing them), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM = os.environ.get("CORESDK_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CORESDK_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")


def require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.exists(p) or shutil.which(p))]
    if missing:
        if os.environ.get("CI") == "true" or os.environ.get("CORESDK_TEST_REQUIRE_TOOLS") == "1":
            pytest.fail(f"browser binaries missing in CI: {', '.join(missing)} (apt: chromium chromium-driver)")
        pytest.skip(f"no real browser here ({', '.join(missing)} missing; apt install chromium chromium-driver)")


@contextmanager
def chromium() -> Iterator[object]:
    """A fresh headless Chromium profile (no cookies carried between tests)."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="coresdk-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
