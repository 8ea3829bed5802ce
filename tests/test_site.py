"""bench site in a real browser: headless Chromium (Debian's chromium + chromium-driver, which
.ci/run installs) driven by selenium over file:// pages built from the committed results: the
leaderboard's threat tabs, its ranks, search, filters and audit flags, and the run and encoder pages."""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bench.cli.main import main
from bench.report.leaderboard import accuracy_table, load_samples
from bench.report.site_index import competition_ranks

ROOT = Path(__file__).resolve().parent.parent
RUNS, AUDIT = ROOT / "results" / "tiny" / "runs", ROOT / "results" / "tiny" / "audit.json"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs chromium and chromium-driver "
                                "(apt-get install -y chromium chromium-driver; .ci/run installs them)")
ENCODERS = ["clip", "tecoa-2", "tecoa-4", "fare-2", "fare-4", "sim-clip-2", "sim-clip-4"]
SHAPE_RUN = "fare-4__tiny-shape__aa__4-255__bab90f42"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    assert main(["site", str(RUNS), "--out", str(out), "--audit", str(AUDIT)]) == 0
    return out


@pytest.fixture(scope="module")
def table():
    """bench leaderboard's numbers, which the site must rank by."""
    return accuracy_table(load_samples(RUNS))


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


def panel(browser):
    """The tab shown now (exactly one is)."""
    from selenium.webdriver.common.by import By

    shown = [p for p in browser.find_elements(By.CSS_SELECTOR, "section.panel") if p.is_displayed()]
    assert len(shown) == 1
    return shown[0]


def visible_rows(browser):
    from selenium.webdriver.common.by import By

    return [r for r in panel(browser).find_elements(By.CSS_SELECTOR, "tbody tr") if r.is_displayed()]


def names(rows) -> list[str]:
    from selenium.webdriver.common.by import By

    return [r.find_element(By.CSS_SELECTOR, "td.name").get_attribute("data-text") for r in rows]


def ranked(rows) -> list[tuple[str, str, float]]:
    """(rank, encoder, robust number) of each row, as the page shows them."""
    from selenium.webdriver.common.by import By

    return [(r.find_element(By.CSS_SELECTOR, "td.rank").text, names([r])[0],
             float(r.find_element(By.CSS_SELECTOR, "td.ranked").get_attribute("data-value"))) for r in rows]


def errors(browser):
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def expected_ranking(table, column: str) -> list[tuple[str, str, float]]:
    values = table[column].sort_values(ascending=False, kind="stable")
    ranks = competition_ranks(list(values))
    return [(str(rank), encoder, float(value)) for rank, (encoder, value) in zip(ranks, values.items())]


def test_the_first_tab_ranks_every_encoder_by_its_robust_average(site, browser, table):
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    tabs = browser.find_elements(By.CSS_SELECTOR, "button.tab")
    assert [t.text for t in tabs] == ["Linf 4/255", "Linf 2/255"]  # the largest eps first
    rows = ranked(visible_rows(browser))
    assert sorted(name for _, name, _ in rows) == sorted(ENCODERS)
    assert [v for _, _, v in rows] == sorted((v for _, _, v in rows), reverse=True)
    by_leaderboard = expected_ranking(table, "avg Linf 4/255")
    assert {(n, v) for _, n, v in rows} == {(n, v) for _, n, v in by_leaderboard}
    assert [r for r, _, _ in rows] == [r for r, _, _ in by_leaderboard]
    headers = [h.text for h in panel(browser).find_elements(By.CSS_SELECTOR, "thead th")]
    # rank, name, the two averages first, then what each encoder is, then the tasks
    assert headers[:8] == ["#", "encoder", "clean\navg", "robust\navg", "architecture", "method", "training eps",
                           "source"]
    fare = next(r for r in visible_rows(browser) if names([r]) == ["fare-4"])
    assert [c.text for c in fare.find_elements(By.TAG_NAME, "td")[4:8]] == [
        "tiny-clip", "fare", "4/255", "tiny:clip + tiny:fare-4"]
    clip = next(r for r in visible_rows(browser) if names([r]) == ["clip"])
    assert clip.find_elements(By.TAG_NAME, "td")[6].text == "—"  # no training eps: not adversarially trained
    assert errors(browser) == []


def test_tabs_switch_to_another_threat_with_its_own_ranking(site, browser, table):
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    first = panel(browser)
    browser.find_element(By.XPATH, "//button[text()='Linf 2/255']").click()
    assert not first.is_displayed()
    second = panel(browser)
    assert second.find_element(By.TAG_NAME, "table").get_attribute("data-threat") == "Linf 2/255"
    assert second.find_element(By.CSS_SELECTOR, "th.ranked").get_attribute("title") == "avg Linf 2/255"
    rows = ranked(visible_rows(browser))
    assert [(r, n) for r, n, _ in rows] == [(r, n) for r, n, _ in expected_ranking(table, "avg Linf 2/255")]
    # the 2/255 ranking is its own, not the 4/255 one
    assert [n for _, n, _ in rows] != [n for _, n, _ in expected_ranking(table, "avg Linf 4/255")]
    # only the tasks attacked at 2/255: no VLM columns in this tab
    kinds = {h.get_attribute("data-kind") for h in second.find_elements(By.CSS_SELECTOR, "th[data-kind]")}
    assert kinds == {"classification"}
    browser.find_element(By.XPATH, "//button[text()='Linf 4/255']").click()
    assert first.is_displayed() and not second.is_displayed()
    assert errors(browser) == []


def test_a_column_sorts_and_the_rank_column_restores_the_ranking(site, browser):
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    ranking = names(visible_rows(browser))
    headers = panel(browser).find_elements(By.CSS_SELECTOR, "th")
    clean = next(h for h in headers if h.get_attribute("title") == "avg clean")
    index = headers.index(clean)

    def column():
        return [float(r.find_elements(By.TAG_NAME, "td")[index].get_attribute("data-value"))
                for r in visible_rows(browser)]

    clean.click()
    assert column() == sorted(column())
    clean.click()
    assert column() == sorted(column(), reverse=True)
    assert names(visible_rows(browser)) != ranking
    panel(browser).find_element(By.CSS_SELECTOR, "th.rank").click()
    assert names(visible_rows(browser)) == ranking
    assert errors(browser) == []


def test_search_filters_rows_by_name_method_and_source(site, browser):
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    search = browser.find_element(By.ID, "search")
    for query, expected in (("FARE", {"fare-2", "fare-4"}), ("sim-clip-4", {"sim-clip-4"}),
                            ("tiny:tecoa-4", {"tecoa-4"}), ("tecoa 2", {"tecoa-2"}), ("no-such-model", set())):
        search.clear()
        search.send_keys(query)
        assert set(names(visible_rows(browser))) == expected, query
    browser.find_element(By.XPATH, "//button[text()='Linf 2/255']").click()  # the search holds in every tab
    assert names(visible_rows(browser)) == []
    search.clear()
    search.send_keys(" ")  # an empty query shows every row again
    assert sorted(names(visible_rows(browser))) == sorted(ENCODERS)
    assert errors(browser) == []


def test_filters_hide_the_columns_of_a_task_kind_and_the_clean_cells(site, browser):
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    captioning = panel(browser).find_elements(By.CSS_SELECTOR, "th[data-kind=captioning]")
    assert captioning and all(h.is_displayed() for h in captioning)
    browser.find_element(By.CSS_SELECTOR, "input.kind[value=captioning]").click()
    assert not any(h.is_displayed() for h in captioning)
    clean = panel(browser).find_elements(By.CSS_SELECTOR, "td[data-side=clean]")
    browser.find_element(By.CSS_SELECTOR, "input.side[value=clean]").click()
    assert clean and not any(c.is_displayed() for c in clean)
    assert panel(browser).find_element(By.CSS_SELECTOR, "td.ranked").is_displayed()  # the averages always show
    assert errors(browser) == []


def test_an_encoder_the_audit_warned_about_is_flagged(site, browser):
    from selenium.webdriver.common.by import By

    warned = {c["encoder"] for c in json.loads(AUDIT.read_text()) if c["verdict"] == "warn"}
    assert warned == {"tecoa-4"}  # results/tiny/audit.json: its clean predictions collapse on tiny-shape
    browser.get((site / "index.html").as_uri())
    flags = {names([r])[0]: r.find_elements(By.CSS_SELECTOR, "a.flag") for r in visible_rows(browser)}
    assert {name for name, found in flags.items() if found} == warned
    flag = flags["tecoa-4"][0]
    assert flag.get_attribute("title").startswith("bench audit warned: predictions on tiny-shape: 57%")
    flag.click()
    note = browser.find_element(By.ID, flag.get_attribute("href").split("#")[1])
    assert note.text.startswith("tecoa-4: predictions on tiny-shape") and note.is_displayed()
    assert "from " + str(AUDIT) in browser.find_element(By.TAG_NAME, "body").text
    browser.get((site / "encoders" / "tecoa-4.html").as_uri())
    assert "predictions on tiny-shape" in browser.find_element(By.TAG_NAME, "body").text
    assert errors(browser) == []


def test_without_audit_no_encoder_is_flagged_and_a_missing_report_is_one_line(tmp_path, capsys, browser):
    from selenium.webdriver.common.by import By

    results = tmp_path / "results"
    shutil.copytree(RUNS / SHAPE_RUN, results / SHAPE_RUN)
    assert main(["site", str(results), "--out", str(tmp_path / "site")]) == 0
    browser.get((tmp_path / "site" / "index.html").as_uri())
    assert not browser.find_elements(By.CSS_SELECTOR, "a.flag")
    assert "No audit report given" in browser.find_element(By.TAG_NAME, "body").text
    capsys.readouterr()
    assert main(["site", str(results), "--out", str(tmp_path / "other"), "--audit", str(tmp_path / "audit.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no audit report at" in err and "audit.json" in err
    assert not (tmp_path / "other").exists()


def test_equal_numbers_share_a_rank(tmp_path, browser):
    """A second encoder with the same runs as fare-4 ties with it: both rank 1, the next ranks 3.
    One classification task: no average, so its column ranks."""
    from selenium.webdriver.common.by import By

    results = tmp_path / "results"
    for run in (SHAPE_RUN, "fare-4__tiny-shape__none__clean__bab90f42", "clip__tiny-shape__aa__4-255__34df383f",
                "clip__tiny-shape__none__clean__34df383f"):
        shutil.copytree(RUNS / run, results / run)
        if run.startswith("fare-4"):
            twin = results / run.replace("fare-4", "fare-4-twin")
            shutil.copytree(RUNS / run, twin)
            config = json.loads((twin / "config.json").read_text())
            (twin / "config.json").write_text(json.dumps(config | {"encoder": "fare-4-twin"}))
    assert main(["site", str(results), "--out", str(tmp_path / "site")]) == 0
    browser.get((tmp_path / "site" / "index.html").as_uri())
    assert panel(browser).find_element(By.CSS_SELECTOR, "th.ranked").get_attribute("title") == "tiny-shape Linf 4/255"
    rows = ranked(visible_rows(browser))
    assert rows[0][2] == rows[1][2] > rows[2][2]
    assert [(r, n) for r, n, _ in rows] == [("1", "fare-4"), ("1", "fare-4-twin"), ("3", "clip")]
    assert errors(browser) == []


def test_a_classification_run_page_names_its_classes(site, browser):
    from selenium.webdriver.common.by import By

    from bench.suites import get_suite, load_task

    classnames = load_task(get_suite("tiny"), "tiny-shape", None).data.classnames
    records = [json.loads(line) for line in (RUNS / SHAPE_RUN / "records.jsonl").read_text().splitlines()]
    browser.get((site / "runs" / f"{SHAPE_RUN}.html").as_uri())
    headers = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#samples th")]
    first = browser.find_elements(By.CSS_SELECTOR, "#samples tbody tr")[0].find_elements(By.TAG_NAME, "td")
    for field in ("label", "clean_pred", "adv_pred"):
        cell = first[headers.index(field)]
        index = records[0][field]
        assert cell.text == classnames[index] and cell.get_attribute("title") == f"class {index}"
    assert first[headers.index("id")].text == records[0]["id"]
    assert ", ".join(classnames) in browser.find_element(By.ID, "class-source").text
    assert errors(browser) == []


def test_a_run_page_opens_from_the_index_with_its_samples(site, browser):
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    link = panel(browser).find_element(By.CSS_SELECTOR, "td[data-kind=vqa] a")
    link.click()
    assert "/runs/" in browser.current_url and "vqa" in browser.title
    rows = browser.find_elements(By.CSS_SELECTOR, "#samples tbody tr")
    assert 0 < len(rows) <= 50
    headers = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#samples th")]
    assert headers[:3] == ["id", "clean_score", "adv_score"] and "clean_output" in headers and "adv_output" in headers
    assert not browser.find_elements(By.ID, "class-source")  # a VQA run has no classes
    browser.find_element(By.LINK_TEXT, "← leaderboard").click()
    assert browser.current_url.endswith("index.html")
    assert errors(browser) == []


def test_an_encoder_page_shows_its_card_and_plot(site, browser):
    from selenium.webdriver.common.by import By

    browser.get((site / "encoders" / "fare-4.html").as_uri())
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "bench train --suite tiny --method fare" in text and "clean vs robust" in text
    assert "training eps 4/255" in text and "audit warnings" not in text
    assert browser.find_elements(By.CSS_SELECTOR, ".plot svg")
    assert errors(browser) == []
