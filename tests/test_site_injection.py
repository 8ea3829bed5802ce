"""bench site on a results folder whose every string is hostile: results folders are shared between
labs, so a run folder's name, an encoder's or task's name, a config value, a record's id, a VLM's
caption, a card's training method, a weights path, an audit report's check or a task's class names
are someone else's text. The pages, opened in headless Chromium, must show each one as text and run
none of it (the search box included)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from bench.cli.main import main
from bench.report.site import Run, run_page
from bench.report.site_classes import ClassNames
from bench.run.runner import slug
from tests.test_site import ROOT, chromium, pytestmark  # noqa: F401 (pytestmark: test_site's skip)

RUNS = ROOT / "results" / "tiny" / "runs"
ZERO_SHOT, VLM = "clip__tiny-shape__aa__4-255__34df383f", "tiny-llava+clip__tiny-vqa__aa__4-255__6a4ccc8c"
# Every payload sets window.__pwned or raises an alert if the browser ever runs it.
SCRIPT = "</script><script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
SVG = '"><svg onload=window.__pwned=1>'
JS_URL = "javascript:window.__pwned=1//"
COMMENT = "<!--<script>window.__pwned=1</script>"
# A file name can hold no '/': the folder names use the payloads that do without.
ZERO_SHOT_FOLDER = 'r"><img src=x onerror=alert(5)>'
VLM_FOLDER = "javascript:alert(5)'><svg onload=alert(5)>"
ENCODER = "enc<img src=x onerror=alert(5)>"
TASK = "task--><svg onload=window.__pwned=1>"  # no ':' (a header breaks a VLM column's name there)
VLM_NAME = "vlm'\"><img src=x onerror=alert(5)>"
CARD = {"method": SCRIPT, "eps_label": SVG, "command": IMG, "recipe": {"lr": COMMENT}}
WEIGHTS_FOLDER = "w'\"><img src=x onerror=alert(5)>"  # the source column shows the weights' path
AUDIT = [{"encoder": ENCODER, "task": TASK, "check": SVG, "verdict": "warn", "value": COMMENT},
         {"encoder": ENCODER, "task": TASK, "check": "eps", "verdict": "pass", "value": IMG}]
CLASSES = [SCRIPT, IMG, SVG, COMMENT, JS_URL]  # tiny-shape's records hold 5 class indices
# What each page must show as text: the proof that a value was escaped, not dropped.
SHOWN = {
    "index.html": [ENCODER, TASK, VLM_NAME, SCRIPT, SVG, IMG, WEIGHTS_FOLDER, COMMENT],
    f"encoders/{slug(ENCODER)}.html": [ENCODER, TASK, SCRIPT, SVG, IMG, COMMENT, ZERO_SHOT_FOLDER, VLM_FOLDER],
    f"runs/{ZERO_SHOT_FOLDER}.html": [ZERO_SHOT_FOLDER, ENCODER, TASK, f"{SCRIPT}-0", JS_URL, COMMENT, f"bf16{SVG}"],
    f"runs/{VLM_FOLDER}.html": [VLM_FOLDER, VLM_NAME, f"{IMG}-0", SCRIPT, SVG, COMMENT],
}


def _hostile_run(source: Path, folder: Path, config: dict, outputs: bool) -> None:
    """A copy of a real run with hostile config values and records."""
    folder.mkdir(parents=True)
    config = json.loads((source / "config.json").read_text()) | config
    config |= {"command": ["bench", "run", SCRIPT, JS_URL], "attack_args": {"note": IMG},
               "precision": f"bf16{SVG}", "git_commit": COMMENT}
    (folder / "config.json").write_text(json.dumps(config))
    lines = []
    for i, line in enumerate((source / "records.jsonl").read_text().splitlines()):
        record = json.loads(line) | {"id": f"{(SCRIPT, IMG)[outputs]}-{i}", SVG: JS_URL}
        if outputs:
            clean = f"{SCRIPT} \u2028"  # a record won by its clean image holds that output twice
            adv = clean if record["winner"] == "clean" else f"{SVG} {COMMENT}"
            record |= {"clean_output": clean, "adv_output": adv}
        lines.append(json.dumps(record) + "\n")
    (folder / "records.jsonl").write_text("".join(lines))


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site bench site makes of a hostile results folder."""
    root = tmp_path_factory.mktemp("hostile")
    weights = root / WEIGHTS_FOLDER / "model.safetensors"  # the encoder's weights, with bench train's card beside
    weights.parent.mkdir()
    (weights.parent / "card.json").write_text(json.dumps(CARD))
    provenance = {"source": str(weights), "architecture": IMG, "sha256": SVG}
    results = root / "results"
    _hostile_run(RUNS / ZERO_SHOT, results / ZERO_SHOT_FOLDER,
                 {"encoder": ENCODER, "task": TASK, "provenance": provenance}, outputs=False)
    _hostile_run(RUNS / VLM, results / VLM_FOLDER,
                 {"encoder": ENCODER, "vlm": VLM_NAME, "task": f"vqa{IMG}", "provenance": provenance}, outputs=True)
    examples = results / ZERO_SHOT_FOLDER / "examples"
    examples.mkdir()
    for kind in ("clean", "adv", "delta"):
        Image.new("RGB", (4, 4)).save(examples / f"{ZERO_SHOT_FOLDER}_{kind}.png")
    audit = root / "audit.json"
    audit.write_text(json.dumps(AUDIT))
    before = {p for p in root.rglob("*")}
    out = root / "site"
    assert main(["site", str(results), "--out", str(out), "--audit", str(audit)]) == 0
    assert {p for p in root.rglob("*") if not p.is_relative_to(out)} == before  # nothing written beside --out
    return out


def test_every_page_is_written_under_the_names_of_today(site):
    written = sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file())
    assert written == sorted([*SHOWN, *(f"runs/{ZERO_SHOT_FOLDER}/{ZERO_SHOT_FOLDER}_{k}.png"
                                        for k in ("adv", "clean", "delta"))])


def test_no_hostile_string_runs_and_each_is_shown_as_text(site, browser):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    for page, texts in SHOWN.items():
        browser.get((site / page).as_uri())
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert  # noqa: B018 (the property raises when no alert is open)
        assert browser.execute_script("return window.__pwned") is None, page
        # The page's own elements only: one script it runs, the run pages' two JSON blocks, no
        # handler attribute, and links and images that stay file:// URLs
        scripts = browser.execute_script("return [...document.scripts].map(s => s.type)")
        assert scripts == (["application/json"] * 3 + [""] if page.startswith("runs/") else [""]), page
        handlers = browser.execute_script(
            "return [...document.querySelectorAll('*')].filter(e => [...e.attributes].some("
            "a => a.name.startsWith('on'))).map(e => e.outerHTML)")
        assert handlers == [], page
        urls = browser.execute_script("return [...document.querySelectorAll('a[href], img[src]')].map("
                                      "e => e.href || e.src)")
        assert urls and all(url.startswith("file:///") for url in urls), (page, urls)
        text = browser.find_element(By.TAG_NAME, "body").text + browser.execute_script(
            "return [...document.querySelectorAll('[title]')].map(e => e.title).join(' ')")
        assert [t for t in texts if t not in text] == [], page


def test_the_search_box_runs_no_query_and_finds_hostile_names(site, browser):
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    search = browser.find_element(By.ID, "search")
    for query, shown in ((ENCODER, 1), (SCRIPT, 1), (WEIGHTS_FOLDER, 1), (IMG + "x", 0)):
        search.clear()
        search.send_keys(query)
        rows = [r for r in browser.find_elements(By.CSS_SELECTOR, "table.leaderboard tbody tr") if r.is_displayed()]
        assert len(rows) == shown, query
        assert browser.execute_script("return window.__pwned") is None
    flag = browser.find_element(By.CSS_SELECTOR, "a.flag")
    assert flag.get_attribute("title") == f"bench audit warned: {SVG} on {TASK}: {COMMENT}"


def test_hostile_class_names_are_shown_as_text(site, browser, tmp_path):
    """The tiny tasks' class names are harmless; a task of the paper suite reads its names from
    its data folder (classnames.txt), which is someone else's text."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    folder = site.parent / "results" / ZERO_SHOT_FOLDER
    config = json.loads((folder / "config.json").read_text())
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    page = tmp_path / "runs" / "page.html"
    page.parent.mkdir()
    page.write_text(run_page(Run(folder, config, records), None, ClassNames(TASK, SVG, CLASSES)))
    browser.get(page.as_uri())
    assert browser.execute_script("return window.__pwned") is None
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018
    headers = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#samples th")]
    cells = browser.find_elements(By.CSS_SELECTOR, "#samples tbody tr")[0].find_elements(By.TAG_NAME, "td")
    assert cells[headers.index("label")].text == CLASSES[records[0]["label"]]
    text = browser.find_element(By.TAG_NAME, "body").text
    assert [t for t in [*CLASSES, SVG, TASK] if t not in text] == []


def test_the_records_and_the_examples_reach_the_page_intact(site, browser):
    from selenium.webdriver.common.by import By

    browser.get((site / "runs" / f"{VLM_FOLDER}.html").as_uri())
    records = browser.execute_script("return JSON.parse(document.getElementById('records').textContent)")
    assert records[0]["clean_output"] == f"{SCRIPT} \u2028" and records[0][SVG] == JS_URL
    assert [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#samples th")][-1] == SVG
    browser.get((site / "runs" / f"{ZERO_SHOT_FOLDER}.html").as_uri())
    images = browser.find_elements(By.CSS_SELECTOR, ".thumbs img")
    assert [i.get_attribute("alt") for i in images] == ["clean", "adv", "delta"]
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i) == 4
               for i in images)  # the percent-encoded src finds the copied file


def test_a_results_path_ending_in_dot_dot_keeps_every_file_under_out(tmp_path):
    """A run folder given as "run/examples/.." is named ".." by its path: its page and examples
    still go under runs/, by the folder's real name."""
    run = tmp_path / "results" / ZERO_SHOT
    shutil.copytree(RUNS / ZERO_SHOT, run)
    (run / "examples").mkdir()
    Image.new("RGB", (4, 4)).save(run / "examples" / "000_clean.png")
    out = tmp_path / "deep" / "site"
    assert main(["site", str(run / "examples" / ".."), "--out", str(out)]) == 0
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()
                  and not p.is_relative_to(run)) == sorted(
        [f"deep/site/{p}" for p in ("index.html", "encoders/clip.html", f"runs/{ZERO_SHOT}.html",
                                    f"runs/{ZERO_SHOT}/000_clean.png")])


def test_attacked_runs_alone_still_have_clean_columns(site, browser):
    """Neither run is a clean (eps=0) run: the clean columns come from their clean scores, as in
    bench leaderboard, and show one number each."""
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    clean = browser.find_elements(By.CSS_SELECTOR, "table.leaderboard td[data-side=clean]")
    assert len(clean) == 2 and all(c.get_attribute("data-value") != "nan" for c in clean)
