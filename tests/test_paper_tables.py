"""bench paper: the papers' published tables as data, and beside our runs.

* the data files hold the READMEs' numbers: a few pinned per table and the counts of numbers and
  of cells left "not transcribed" (and, where a mirror of the papers' repositories is on this
  machine, every number against the README itself);
* on the tiny suite the replica of Sim-CLIP's table prints every column, with the committed runs;
* on synthetic paper-suite runs (written by the run store, in the real format) a cell prints
  published, ours, the difference and the interval verdict, checked by hand;
* missing cells print the command that fills them; bad input is one line and exit code 2.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.report.published import NOT_TRANSCRIBED, PAPERS, Paper, load_paper

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "results" / "tiny"
# A folder holding the papers' repositories as <owner>/<name> (clones, bare or not), for the test that
# parses their READMEs: `BENCH_PAPER_REPOS=DIR pytest -m paper tests/test_paper_tables.py`.
PAPER_REPOS = "BENCH_PAPER_REPOS"


def values(paper: Paper, table: str, group: str, row: str, threat: str) -> dict[str, object]:
    t = paper.table(table)
    g = next(g for g in t.groups if g.label == group)
    r = next(r for r in g.rows if r.label == row)
    return dict(zip([c.label for c in t.columns], r.values[threat]))


def counts(paper: Paper, table: str) -> tuple[int, int]:
    """(numbers, cells not transcribed) of a table."""
    cells = [v for g in paper.table(table).groups for r in g.rows for vs in r.values.values() for v in vs]
    return sum(v != NOT_TRANSCRIBED for v in cells), sum(v == NOT_TRANSCRIBED for v in cells)


# ---- the data ----------------------------------------------------------------------------------

def test_sim_clip_holds_its_readme_numbers():
    paper = load_paper("sim-clip")
    assert (paper.repository, paper.commit[:7]) == ("speedlab-git/SimCLIP", "2388a87")
    assert [t.id for t in paper.tables] == ["vlm"]
    table = paper.table("vlm")
    assert [c.label for c in table.columns] == ["COCO", "Flickr30k", "VizWiz", "OKVQA"]
    assert [c.task for c in table.columns] == ["coco", "flickr30k", "vizwiz", "okvqa"]
    assert (table.threats, table.protocol, table.attack) == (("clean", "4/255"), "simclip", "apgd")
    assert values(paper, "vlm", "Open Flamingo", "Sim-CLIP-2", "clean") == {
        "COCO": 85.6, "Flickr30k": 56.3, "VizWiz": 21.8, "OKVQA": 35.1}
    assert values(paper, "vlm", "Open Flamingo", "CLIP", "4/255") == {
        "COCO": 5.6, "Flickr30k": 3.8, "VizWiz": 1.8, "OKVQA": 0.0}
    assert values(paper, "vlm", "LLaVA 1.5", "Sim-CLIP-4", "4/255") == {
        "COCO": 72.9, "Flickr30k": 46.3, "VizWiz": 35.2, "OKVQA": 36.2}
    assert values(paper, "vlm", "LLaVA 1.5", "TECOA-4", "clean")["OKVQA"] == 50.0
    # 2 VLMs x 7 encoders x 2 threats x 4 columns, every one printed in the README
    assert counts(paper, "vlm") == (112, 0)
    groups = {g.label: g for g in table.groups}
    assert [r.encoder for r in groups["LLaVA 1.5"].rows] == ["sim-clip-2", "fare-2", "tecoa-2", "sim-clip-4", "fare-4",
                                                             "tecoa-4", "clip"]
    assert (groups["Open Flamingo"].vlm, groups["LLaVA 1.5"].vlm) == ("open-flamingo-9b", "llava-1.5-7b")
    assert groups["Open Flamingo"].samples == {"okvqa": 200}  # bash/of_eval_9B_okvqa.sh


def test_fare_holds_its_readme_numbers_and_marks_the_rest():
    paper = load_paper("fare")
    assert (paper.repository, paper.commit[:7]) == ("chs20/RobustVLM", "7de10ee")
    assert [t.id for t in paper.tables] == ["vlm", "zero-shot", "pope-scienceqa", "base-models"]
    assert values(paper, "vlm", "LLaVA 1.5 7B", "FARE4", "4/255") == {
        "COCO": 40.9, "Flickr30k": NOT_TRANSCRIBED, "TextVQA": 10.9, "VQAv2": NOT_TRANSCRIBED}
    assert values(paper, "vlm", "OpenFlamingo 9B", "OpenAI", "clean")["COCO"] == 79.7
    assert values(paper, "vlm", "OpenFlamingo 9B", "TeCoA2", "2/255")["TextVQA"] == 3.5
    assert counts(paper, "vlm") == (60, 60)  # COCO and TextVQA printed; Flickr30k and VQAv2 in the paper only
    assert values(paper, "zero-shot", "CLIP-only", "FARE2", "4/255")["Avg. zero-shot"] == 20.5
    assert values(paper, "zero-shot", "CLIP-only", "OpenAI", "clean")["Avg. zero-shot"] == 73.1
    assert counts(paper, "zero-shot") == (15, 210)  # the average of 5 models x 3 threats; 14 datasets not
    average = paper.table("zero-shot").columns[-1]
    assert len(average.average_of) == 13 and "imagenet1k" not in average.average_of
    assert counts(paper, "pope-scienceqa") == (0, 10)
    assert values(paper, "base-models", "CLIP-only", "FARE4 ConvNeXt-B LAION 2B", "4/255") == {"Avg. zero-shot": 28.4}
    assert values(paper, "base-models", "CLIP-only", "TeCoA1 ViT-B/32 OpenAI", "1/255") == {"Avg. zero-shot": 38.8}
    assert counts(paper, "base-models") == (40, 0)


def test_delta_clip_holds_its_figure_values_and_marks_the_ambiguous_ones():
    paper = load_paper("delta-clip")
    assert (paper.repository, paper.commit[:7]) == ("zw615/Double_Visual_Defense", "1b577a2")
    table = paper.table("zero-shot")
    assert [c.task for c in table.columns] == ["imagenet1k", "objectnet", "vtab/cifar100"]
    assert (table.threats, table.attack, table.protocol, table.run) == (("clean", "4/255"), "aa", None,
                                                                        {"sample_order": "dvd"})
    assert values(paper, "zero-shot", "CLIP-only", "ΔCLIP", "4/255") == {
        "ImageNet": 60.0, "ObjectNet": 42.9, "CIFAR100": 43.8}
    # clean ImageNet / ObjectNet: OpenAI CLIP's point lies outside ΔCLIP's there, the box may be its value
    assert values(paper, "zero-shot", "CLIP-only", "ΔCLIP", "clean") == {
        "ImageNet": NOT_TRANSCRIBED, "ObjectNet": NOT_TRANSCRIBED, "CIFAR100": 78.1}
    assert counts(paper, "zero-shot") == (4, 2)
    assert [r.encoder for g in table.groups for r in g.rows] == ["delta-clip-h14-336"]


def test_delta_clip_fill_commands_carry_its_sample_order(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["paper", "delta-clip"]) == 0
    out = capsys.readouterr().out
    assert ("bench run --suite paper --encoder delta-clip-h14-336 --task imagenet1k,objectnet,vtab/cifar100 "
            "--attack aa --eps 0,4/255 --n-samples 1000 --sample-order dvd --out runs") in out


def test_every_name_is_ours_or_one_being_added():
    from bench.encoders.zoo import paper_zoo
    from bench.suites import SUITES

    new_tasks = {"vizwiz", "okvqa", "pope", "scienceqa", "tiny-vizwiz", "tiny-okvqa", "tiny-pope", "tiny-scienceqa"}
    tasks = {t for s in SUITES for t in s.value.task_names()} | new_tasks
    encoders = set(paper_zoo().names())
    tiny_encoders = set(SUITES.get("tiny").value.encoders.names())
    for name in PAPERS:
        for table in load_paper(name).tables:
            for column in table.columns:
                assert {column.task, column.tiny, *column.average_of, *column.tiny_average_of} - {None} <= tasks
            for group in table.groups:
                assert group.vlm in (None, "llava-1.5-7b", "open-flamingo-9b")
                assert group.tiny_vlm in (None, "tiny-llava")
                for row in group.rows:
                    assert row.encoder is None or row.encoder in encoders or row.encoder.startswith("hf-hub:chs20/")
                    assert row.tiny is None or row.tiny in tiny_encoders
                    assert row.encoder is not None or row.note  # a model outside the zoo says where it is


def _readme(repository: str) -> str:
    if not os.environ.get(PAPER_REPOS):
        pytest.fail(f"set {PAPER_REPOS} to a folder holding {repository} (and the other paper's repository)")
    clone = Path(os.environ[PAPER_REPOS]) / repository
    done = subprocess.run(["git", "-C", str(clone), "show", "HEAD:README.md"], capture_output=True, text=True,
                          check=True)
    return done.stdout


def _html_tables(text: str) -> list[list[list[str]]]:
    return [[[re.sub(r"<.*?>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr, re.DOTALL)]
             for tr in re.findall(r"<tr>(.*?)</tr>", table, re.DOTALL)]
            for table in re.findall(r"<table>(.*?)</table>", text, re.DOTALL)]


@pytest.mark.paper  # needs the papers' repositories (BENCH_PAPER_REPOS), so not in the default run
def test_every_number_equals_the_readme():
    """The READMEs' HTML tables and RobustVLM's markdown table, parsed, against the data files."""
    sim_clip = load_paper("sim-clip")
    tables = _html_tables(_readme("speedlab-git/SimCLIP"))
    assert len(tables) == 2
    for threat, rows in zip(("clean", "4/255"), tables):
        group = None
        for cells in rows[1:]:
            if len(cells) == 6:
                group, cells = cells[0], cells[1:]
            assert values(sim_clip, "vlm", group, cells[0], threat) == dict(
                zip(["COCO", "Flickr30k", "VizWiz", "OKVQA"], map(float, cells[1:])))

    fare = load_paper("fare")
    text = _readme("chs20/RobustVLM")
    tables = _html_tables(text)
    assert len(tables) == 3
    order = ["OpenAI", "TeCoA2", "FARE2", "TeCoA4", "FARE4"]
    for threat, rows in zip(("clean", "2/255", "4/255"), tables):
        assert rows[1] == ["Model", "Avg. zero-shot", "COCO", "TextVQA", "COCO", "TextVQA"]
        for label, cells in zip(order, rows[2:]):
            zero_shot, of_coco, of_text, llava_coco, llava_text = map(float, cells[1:])
            assert values(fare, "zero-shot", "CLIP-only", label, threat)["Avg. zero-shot"] == zero_shot
            of = values(fare, "vlm", "OpenFlamingo 9B", label, threat)
            llava = values(fare, "vlm", "LLaVA 1.5 7B", label, threat)
            assert (of["COCO"], of["TextVQA"], llava["COCO"], llava["TextVQA"]) == (of_coco, of_text, llava_coco,
                                                                                    llava_text)
    lines = [line for line in text.splitlines() if re.match(r"\| (TeCoA|FARE)<sup>\d</sup> +\| (ViT|ConvNeXt)", line)]
    assert len(lines) == 10
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        label = f"{re.sub(r'<.*?>', '', cells[0].replace('<sup>', ''))} {cells[1]}"
        row = values(fare, "base-models", "CLIP-only", label, "clean")
        assert row["Avg. zero-shot"] == float(cells[3])
        assert [values(fare, "base-models", "CLIP-only", label, t)["Avg. zero-shot"]
                for t in ("1/255", "2/255", "4/255")] == [float(c) for c in cells[4:7]]


# ---- the tiny replica ------------------------------------------------------------------------------

def test_tiny_replica_of_sim_clip_prints_every_column_with_the_committed_runs(capsys):
    assert main(["paper", "sim-clip", str(TINY)]) == 0
    out = capsys.readouterr().out
    assert "The tiny replica" in out and "speedlab-git/SimCLIP" in out
    header = next(line for line in out.splitlines() if line.startswith("| VLM"))
    for column in ("COCO / Flickr30k: tiny-captions (CIDEr)", "VizWiz: tiny-vizwiz (VQA acc)",
                   "OKVQA: tiny-okvqa (VQA acc)"):
        assert column in header
    assert "### clean" in out and "### Linf 4/255" in out
    rows = {line.split("|")[2].strip(): [c.strip() for c in line.split("|")[3:-1]]
            for line in out.splitlines() if line.startswith("| tiny-llava")}
    assert set(rows) == {"clip", "tecoa-2", "tecoa-4", "fare-2", "fare-4", "sim-clip-2", "sim-clip-4"}
    # the committed leaderboard's numbers (results/tiny/leaderboard.md): clean, and 4/255 of the tiny
    # leaderboard's ensemble (the strict protocol), shown with that mark and not taken as Sim-CLIP's protocol
    clean = next(line for line in out.split("### Linf 4/255")[0].splitlines()
                 if re.match(r"\| tiny-llava +\| clip ", line))
    assert "263.7 [" in clean
    attacked = next(line for line in out.split("### Linf 4/255")[1].splitlines()
                    if re.match(r"\| tiny-llava +\| sim-clip-2 ", line))
    assert "83.8 [" in attacked and "(strict)" in attacked
    assert ("bench run --suite tiny --encoder sim-clip-2,fare-2,tecoa-2,sim-clip-4,fare-4,tecoa-4,clip --task "
            f"tiny-captions,tiny-vizwiz,tiny-okvqa --vlm tiny-llava --attack apgd --eps 4/255 --protocol simclip "
            f"--out {TINY}/runs" in out)


# ---- published beside ours, on synthetic paper-suite runs ----------------------------------------

def _write_run(root: Path, encoder: str, task: str, vlm: str | None, metric: str, eps_label: str, protocol: str,
               precision: str, records: list[dict], settings: dict | None = None) -> None:
    """One run folder as bench run writes it: config.json and records.jsonl through the run store."""
    from bench.run.runner import IDENTITY
    from bench.run.store import RunDir

    eps = 0.0 if eps_label == "clean" else int(eps_label.split("/")[0]) / 255
    attack = "none" if eps == 0 else "aa"
    config = {"encoder": encoder, "task": task, "vlm": vlm, "metric": metric, "task_settings": settings or {},
              "attack": attack, "eps": eps, "eps_label": eps_label, "norm": "linf", "steps": 100, "seed": 0,
              "attack_args": {}, "protocol": protocol, "precision": precision, "target": None,
              "early_stop": 0.0 if protocol == "robustvlm" and vlm else None, "n_samples": len(records),
              "sample_ids": [r["id"] for r in records], "batch_size": 1, "sha256": "0" * 64}
    label = f"{vlm}+{encoder}" if vlm else encoder
    store = RunDir(root / f"{label}__{task.replace('/', '-')}__{attack}__{eps_label.replace('/', '-')}", config,
                   IDENTITY)
    store.append(records)
    store.close()


def _vqa(ids: range, clean_right: set[int], adv_right: set[int], eps: float) -> list[dict]:
    records = []
    for k in ids:
        clean, adv = 100.0 if k in clean_right else 0.0, 100.0 if k in adv_right else 0.0
        records.append({"id": f"q{k}", "clean_score": clean, "adv_score": adv, "clean_output": "yes" if clean else "no",
                        "adv_output": "yes" if adv else "no", "linf": eps if eps else 0.0,
                        "winner": "apgd-ce" if eps else "clean"})
    return records


def _zero_shot(n: int, right: int) -> list[dict]:
    return [{"id": f"img{k}", "label": 1, "clean_pred": 1 if k < right else 0, "adv_pred": 1 if k < right else 0,
             "clean_correct": k < right, "robust": k < right, "clean_score": 100.0 * (k < right),
             "adv_score": 100.0 * (k < right), "winner": None if k < right else "clean", "linf": 0.0}
            for k in range(n)]


ZERO_SHOT = ["vtab/cifar10", "stl10", "vtab/cifar100", "cars", "vtab/caltech101", "vtab/pets", "vtab/flowers",
             "vtab/dtd", "vtab/eurosat", "fgvc_aircraft", "vtab/pcam", "imagenet-r", "imagenet_sketch"]
PAPER_VQA = {"vqa_metric": "openflamingo", "max_answers": 5}


@pytest.fixture(scope="module")
def paper_runs(tmp_path_factory) -> Path:
    """fare-4 in LLaVA on TextVQA: clean 140 of 500 right (28.0), 4/255 under RobustVLM's protocol in fp16
    100 right (20.0), 2/255 under the strict protocol only; COCO captions (CIDEr); zero-shot: tecoa-4 on
    all 13 datasets (clean), fare-4 on 12 of them."""
    root = tmp_path_factory.mktemp("paper-runs")
    ids, clean_right, adv_right = range(500), set(range(140)), set(range(100))
    _write_run(root, "fare-4", "textvqa", "llava-1.5-7b", "VQA acc", "clean", "robustvlm", "fp16",
               _vqa(ids, clean_right, clean_right, 0.0), PAPER_VQA)
    _write_run(root, "fare-4", "textvqa", "llava-1.5-7b", "VQA acc", "4/255", "robustvlm", "fp16",
               _vqa(ids, clean_right, adv_right, 4 / 255), PAPER_VQA)
    _write_run(root, "fare-4", "textvqa", "llava-1.5-7b", "VQA acc", "2/255", "strict", "fp32",
               _vqa(ids, clean_right, set(range(120)), 2 / 255), PAPER_VQA)
    captions = [{"id": f"c{k}", "clean_score": 80.0 + k, "adv_score": 80.0 + k, "clean_output": "a dog on grass",
                 "adv_output": "a dog on grass", "linf": 0.0, "winner": "clean"} for k in range(20)]
    _write_run(root, "fare-4", "coco", "llava-1.5-7b", "CIDEr", "clean", "robustvlm", "fp16", captions)
    for k, task in enumerate(ZERO_SHOT):
        _write_run(root, "tecoa-4", task, None, "accuracy %", "clean", "robustvlm", "fp32", _zero_shot(20, 10 + k % 3))
        if task != "vtab/pcam":
            _write_run(root, "fare-4", task, None, "accuracy %", "clean", "robustvlm", "fp32", _zero_shot(20, 12))
    return root


@pytest.fixture
def no_data_root(monkeypatch, tmp_path):
    monkeypatch.delenv("BENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))


def _cells(runs: Path, capsys, *tables: str) -> dict[tuple, dict]:
    assert main(["paper", "fare", str(runs), "--format", "json", "--table", ",".join(tables)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "robust-vlm-bench paper tables v1" and data["suite"] == "paper"
    return {(c["table"], c["vlm_group"], c["row"], c["column"], c["threat"]): c
            for t in data["tables"] for c in t["cells"]}, data


def test_published_beside_ours_with_difference_and_verdict(paper_runs, capsys, no_data_root):
    cells, data = _cells(paper_runs, capsys, "vlm", "zero-shot")
    clean = cells[("vlm", "LLaVA 1.5 7B", "FARE4", "TextVQA", "clean")]
    # by hand: 140 of 500 samples score 100 -> 28.0; the README prints 27.6 -> +0.4. The bootstrap's 95%
    # interval is close to the normal one, 28.0 +- 1.96 * sqrt(.28 * .72 / 500) * 100 = [24.1, 31.9]
    assert (clean["published"], clean["ours"], clean["difference"], clean["n"]) == (27.6, 28.0, 0.4, 500)
    assert clean["lo"] == pytest.approx(24.1, abs=0.6) and clean["hi"] == pytest.approx(31.9, abs=0.6)
    assert clean["verdict"] == "in" and clean["fill"] is None
    assert clean["source"] == "chs20/RobustVLM@7de10ee README.md, 'Summary of results: Clean evaluation'"
    assert clean["our_task"] == "llava-1.5-7b:textvqa (openflamingo)"
    attacked = cells[("vlm", "LLaVA 1.5 7B", "FARE4", "TextVQA", "4/255")]
    # 100 of 500 -> 20.0 against 10.9: +9.1, far outside 20.0 +- 3.5
    assert (attacked["published"], attacked["ours"], attacked["difference"]) == (10.9, 20.0, 9.1)
    assert attacked["hi"] == pytest.approx(23.5, abs=0.6) and attacked["lo"] == pytest.approx(16.5, abs=0.6)
    assert attacked["verdict"] == "out" and attacked["our_threat"] == "Linf 4/255 fp16 robustvlm"
    # 2/255 was run under the strict protocol only: shown, not compared, and still to be filled
    other = cells[("vlm", "LLaVA 1.5 7B", "FARE4", "TextVQA", "2/255")]
    assert (other["ours"], other["difference"], other["verdict"]) == (24.0, None, "other protocol")
    assert other["fill"] == (f"bench run --suite paper --encoder fare-4 --task textvqa --vlm llava-1.5-7b --attack aa "
                             f"--eps 2/255 --protocol robustvlm --n-samples 500 --out {paper_runs}")
    missing = cells[("vlm", "OpenFlamingo 9B", "FARE4", "COCO", "4/255")]
    assert (missing["published"], missing["ours"], missing["verdict"]) == (22.8, None, "not run")
    assert "--vlm open-flamingo-9b --attack aa --eps 4/255 --protocol robustvlm" in missing["fill"]
    flickr = cells[("vlm", "LLaVA 1.5 7B", "FARE4", "Flickr30k", "clean")]
    assert (flickr["published"], flickr["verdict"]) == (NOT_TRANSCRIBED, "not run")
    assert "not transcribed" in flickr["source"]
    # CIDEr's interval re-scores the references, which only the paper suite's data holds: said, not guessed
    coco = cells[("vlm", "LLaVA 1.5 7B", "FARE4", "COCO", "clean")]
    assert (coco["published"], coco["ours"], coco["difference"], coco["verdict"]) == (102.4, 89.5, -12.9,
                                                                                        "no interval")
    vlm_notes = next(t["notes"] for t in data["tables"] if t["id"] == "vlm")
    assert len(vlm_notes) == 1 and vlm_notes[0].startswith("no 95% intervals for llava-1.5-7b:coco: ")
    # the zero-shot average: all 13 datasets (10, 11, 12, 10, ... of 20 right: 142 of 260), or none
    average = cells[("zero-shot", "CLIP-only", "TeCoA4", "Avg. zero-shot", "clean")]
    assert (average["ours"], average["published"], average["n"], average["difference"]) == (54.6, 54.2, 260, 0.4)
    assert average["lo"] < 54.2 < average["hi"] and average["verdict"] == "in"
    partial = cells[("zero-shot", "CLIP-only", "FARE4", "Avg. zero-shot", "clean")]
    assert partial["ours"] is None and partial["verdict"] == "not run"
    assert partial["fill"] == (f"bench run --suite paper --encoder fare-4 --task vtab/pcam --eps 0 --n-samples 1000 "
                               f"--out {paper_runs}")
    dataset = cells[("zero-shot", "CLIP-only", "FARE4", "CIFAR-10", "clean")]
    assert (dataset["ours"], dataset["published"], dataset["verdict"]) == (60.0, NOT_TRANSCRIBED, NOT_TRANSCRIBED)


def test_markdown_cell_and_fill_commands(paper_runs, capsys, no_data_root):
    assert main(["paper", "fare", str(paper_runs), "--table", "vlm"]) == 0
    out = capsys.readouterr().out
    sections = {part.split("\n", 1)[0]: part for part in out.split("### ")[1:]}
    clean, strict, attacked = (next(line for line in sections[threat].splitlines()
                                    if re.match(r"\| LLaVA 1\.5 7B +\| FARE4 ", line))
                               for threat in ("clean", "Linf 2/255", "Linf 4/255"))
    assert re.search(r"\| 27\.6 · 28\.0 \[2\d\.\d, 3\d\.\d\] · \+0\.4 · in ", clean)
    assert re.search(r"\| 10\.9 · 20\.0 \[1\d\.\d, 2\d\.\d\] · \+9\.1 · OUT ", attacked)
    assert "| 102.4 · 89.5 · -12.9 · no interval " in clean
    assert "(strict) · other protocol" in strict
    assert "Not run yet: 117 of 120 cells. These commands fill them:" in out
    assert (f"bench run --suite paper --encoder clip,tecoa-2,fare-2,tecoa-4,fare-4 --task coco,flickr30k,textvqa,"
            f"vqav2 --vlm open-flamingo-9b --attack aa --eps 0,2/255,4/255 --protocol robustvlm --n-samples 500 "
            f"--out {paper_runs}") in out


def test_delta_clip_cells_take_runs_of_its_sample_order_only(tmp_path, capsys, no_data_root):
    """ΔCLIP's cells are filled by --sample-order dvd runs (their own leaderboard column, 'objectnet (dvd)');
    a run of the default order, another draw of samples, fills nothing there, and a dvd run nothing in
    FARE's table."""
    dvd = {"sample_order": "dvd"}
    _write_run(tmp_path, "delta-clip-h14-336", "vtab/cifar100", None, "accuracy %", "4/255", "robustvlm", "fp32",
               _zero_shot(40, 18), dvd)  # 45.0: published 43.8
    _write_run(tmp_path, "delta-clip-h14-336", "objectnet", None, "accuracy %", "4/255", "robustvlm", "fp32",
               _zero_shot(40, 30))  # the default order: not ΔCLIP's samples
    _write_run(tmp_path, "fare-4", "vtab/cifar10", None, "accuracy %", "clean", "robustvlm", "fp32",
               _zero_shot(20, 12), dvd)
    assert main(["paper", "delta-clip", str(tmp_path), "--format", "json"]) == 0
    cells = {(c["column"], c["threat"]): c for t in json.loads(capsys.readouterr().out)["tables"] for c in t["cells"]}
    cifar = cells[("CIFAR100", "4/255")]
    assert (cifar["published"], cifar["ours"], cifar["difference"], cifar["our_task"]) == (
        43.8, 45.0, 1.2, "vtab/cifar100 (dvd)")
    assert cells[("ObjectNet", "4/255")]["ours"] is None
    assert "--task objectnet" in cells[("ObjectNet", "4/255")]["fill"]
    assert "--sample-order dvd" in cells[("ObjectNet", "4/255")]["fill"]
    fare, _ = _cells(tmp_path, capsys, "zero-shot")
    assert fare[("zero-shot", "CLIP-only", "FARE4", "CIFAR-10", "clean")]["ours"] is None


def test_without_runs_every_cell_says_what_to_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/ here: the published table and the commands to fill it
    assert main(["paper", "fare", "--table", "pope-scienceqa", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("table,threat,vlm_group,vlm,row,encoder,column,task,metric,published,source")
    assert len(lines) == 11 and all(",not transcribed," in line and ",not run," in line for line in lines[1:])
    assert "bench run --suite paper --encoder clip --task pope --vlm llava-1.5-7b --eps 0 --out runs" in lines[1]


# ---- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["paper", "simclip"], "unknown paper 'simclip'; did you mean 'sim-clip'?"),
    (["paper", "fare", "{root}/no-such-folder"], "results directory {root}/no-such-folder does not exist"),
    (["paper", "fare", "--table", "vlms"], "did you mean 'vlm'?"),
    (["paper", "fare", "--format", "xlsx"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    out = tmp_path / "table.md"
    argv = [a.replace("{root}", str(tmp_path)) for a in argv] + ["--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.replace("{root}", str(tmp_path)) in err
    assert not out.exists()
