"""Headless Chromium for the dashboard tests: Debian's `chromium` and `chromedriver`, given by
path so Selenium Manager never looks for (or downloads) a browser of its own."""

import os
import shutil

import pytest

REQUIRE = os.environ.get("VENDORGATE_REQUIRE_BROWSER") == "1"


def find_browser():
    """(chromium, chromedriver) paths, or a reason they cannot be used."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return None, "selenium is not installed (tests/e2e/requirements.txt)"
    chromium = os.environ.get("VENDORGATE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("VENDORGATE_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not chromium or not os.access(chromium, os.X_OK):
        return None, "no chromium (apt-get install chromium chromium-driver)"
    if not os.access(driver, os.X_OK):
        return None, "no chromedriver (apt-get install chromium-driver)"
    return (chromium, driver), None


def start_chromium(width=1366, height=900):
    """A headless Chromium with its console kept, or a skip (a failure when
    VENDORGATE_REQUIRE_BROWSER=1, as in CI, so a missing browser cannot pass unnoticed)."""
    found, why = find_browser()
    if not found:
        if REQUIRE:
            pytest.fail(f"VENDORGATE_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = found
    o = webdriver.ChromeOptions()
    o.binary_location = chromium
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}", "--disable-extensions", "--no-first-run"]:
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=o)
