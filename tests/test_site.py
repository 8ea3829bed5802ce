"""bench site in a real browser: headless Chromium (Debian's chromium + chromium-driver, which
.ci/run installs) driven by selenium over file:// pages built from the committed results."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bench.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs chromium and chromium-driver "
                                "(apt-get install -y chromium chromium-driver; .ci/run installs them)")
ENCODERS = ["clip", "tecoa-2", "tecoa-4", "fare-2", "fare-4", "sim-clip-2", "sim-clip-4"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    assert main(["site", str(ROOT / "results" / "tiny" / "runs"), "--out", str(out)]) == 0
    return out


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium driven by selenium, its console log kept (tests/test_site_injection.py too)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def _rows(browser):
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")


def _errors(browser):
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_the_index_lists_every_encoder_and_sorts_by_a_column(site, browser):
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    names = [r.find_element(By.CSS_SELECTOR, "td.name").text for r in _rows(browser)]
    assert sorted(names) == sorted(ENCODERS)
    header = next(h for h in browser.find_elements(By.CSS_SELECTOR, "#leaderboard th")
                  if h.get_attribute("title") == "avg Linf 4/255")
    index = browser.find_elements(By.CSS_SELECTOR, "#leaderboard th").index(header)

    def column():
        return [float(r.find_elements(By.TAG_NAME, "td")[index].get_attribute("data-value")) for r in _rows(browser)]

    assert header.text == "avg\nLinf 4/255"  # the column's name, less its threat, above the threat
    header.click()
    assert column() == sorted(column())
    header.click()
    assert column() == sorted(column(), reverse=True)
    assert _errors(browser) == []


def test_filters_hide_columns_of_a_task_kind_and_an_eps(site, browser):
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    captioning = [h for h in browser.find_elements(By.CSS_SELECTOR, "#leaderboard th[data-kind=captioning]")]
    assert captioning and all(h.is_displayed() for h in captioning)
    browser.find_element(By.CSS_SELECTOR, "input.kind[value=captioning]").click()
    assert not any(h.is_displayed() for h in captioning)
    clean = browser.find_elements(By.CSS_SELECTOR, "#leaderboard td[data-eps=clean]")
    browser.find_element(By.CSS_SELECTOR, "input.eps[value=clean]").click()
    assert clean and not any(c.is_displayed() for c in clean)
    assert _errors(browser) == []


def test_a_run_page_opens_from_the_index_with_its_samples(site, browser):
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    link = browser.find_element(By.CSS_SELECTOR, "#leaderboard td[data-kind=vqa] a")
    link.click()
    assert "/runs/" in browser.current_url and "vqa" in browser.title
    rows = browser.find_elements(By.CSS_SELECTOR, "#samples tbody tr")
    assert 0 < len(rows) <= 50
    headers = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#samples th")]
    assert headers[:3] == ["id", "clean_score", "adv_score"] and "clean_output" in headers and "adv_output" in headers
    browser.find_element(By.LINK_TEXT, "← leaderboard").click()
    assert browser.current_url.endswith("index.html")
    assert _errors(browser) == []


def test_an_encoder_page_shows_its_card_and_plot(site, browser):
    from selenium.webdriver.common.by import By

    browser.get((site / "encoders" / "fare-4.html").as_uri())
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "bench train --suite tiny --method fare" in text and "clean vs robust" in text
    assert browser.find_elements(By.CSS_SELECTOR, ".plot svg")
    assert _errors(browser) == []
