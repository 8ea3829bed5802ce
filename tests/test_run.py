"""bench run end to end on real files: records, resume after SIGKILL, locking, leaderboard."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.cli.main import main
from bench.run.store import RunDir, read_records
from tests import bench_fixtures as fx

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return fx.folder_and_checkpoint(tmp_path_factory.mktemp("world"), per_class=6)


def _args(world, out, *extra):
    data, model = world
    return ["run", "--encoder", str(model), "--task", f"folder:{data}", "--out", str(out),
            "--steps", "5", "--batch-size", "4", *extra]


def _records(out: Path) -> dict[str, list[dict]]:
    return {p.parent.name: sorted(read_records(p), key=lambda r: r["id"]) for p in out.rglob("records.jsonl")}


def test_run_writes_config_and_one_record_per_sample(world, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(_args(world, out, "--attack", "aa", "--eps", "0,2/255,4/255")) == 0
    runs = sorted(out.iterdir())
    assert len(runs) == 3  # clean, 2/255, 4/255
    for run in runs:
        config = json.loads((run / "config.json").read_text())
        assert config["seed"] == 0 and len(config["sha256"]) == 64 and config["git_commit"]
        assert {"torch", "open_clip_torch", "python"} <= set(config["versions"])
        records = read_records(run / "records.jsonl")
        assert sorted(r["id"] for r in records) == sorted(config["sample_ids"])
        assert len(records) == 24
        for r in records:
            assert r["linf"] <= config["eps"] + 1e-6
            assert r["robust"] <= r["clean_correct"]
    table = capsys.readouterr().out
    assert "robust" in table and "accuracy %" in table and "4/255" in table


def test_rerun_skips_finished_samples(world, tmp_path):
    out = tmp_path / "results"
    assert main(_args(world, out, "--attack", "apgd", "--eps", "4/255")) == 0
    first = _records(out)
    assert main(_args(world, out, "--attack", "apgd", "--eps", "4/255")) == 0
    assert _records(out) == first
    lines = next(out.rglob("records.jsonl")).read_text().splitlines()
    assert len(lines) == 24  # nothing appended twice


@pytest.mark.long
def test_sigkill_and_resume_gives_the_same_records(world, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    cmd = [sys.executable, "-m", "bench", *_args(world, killed, "--attack", "aa", "--eps", "8/255",
                                                 "--batch-size", "2", "--steps", "20")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once some, but not all, records are on disk
        found = list(killed.rglob("records.jsonl"))
        if found and 0 < len(found[0].read_text().splitlines()) < 24:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(next(killed.rglob("records.jsonl")).read_text().splitlines())
    assert 0 < partial < 24
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    ref_cmd = [c if c != str(killed) else str(reference) for c in cmd]
    assert subprocess.run(ref_cmd, env=env, capture_output=True).returncode == 0
    resumed, uninterrupted = _records(killed), _records(reference)
    assert list(resumed.values()) == list(uninterrupted.values())
    assert len(next(iter(resumed.values()))) == 24


def test_torn_last_line_is_repaired(world, tmp_path):
    out = tmp_path / "results"
    assert main(_args(world, out, "--attack", "none", "--eps", "0")) == 0
    records = next(out.rglob("records.jsonl"))
    lines = records.read_text().splitlines(keepends=True)
    records.write_text("".join(lines[:-3]) + lines[-3][:10])  # a kill in the middle of a write
    assert main(_args(world, out, "--attack", "none", "--eps", "0")) == 0
    assert records.read_text() .count("\n") == 24
    assert len(read_records(records)) == 24


def test_two_runs_never_share_a_directory(world, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(_args(world, out, "--attack", "none", "--eps", "0")) == 0
    run = next(out.iterdir())
    holder = RunDir(run, json.loads((run / "config.json").read_text()), ())
    try:
        assert main(_args(world, out, "--attack", "none", "--eps", "0")) == 2
        assert "being written by another bench process" in capsys.readouterr().err
    finally:
        holder.close()


def test_leaderboard_and_plot(world, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(_args(world, out, "--attack", "aa", "--eps", "0,4/255")) == 0
    assert main(_args(world, out, "--attack", "pgd", "--eps", "4/255")) == 0
    capsys.readouterr()
    assert main(["leaderboard", str(out), "--format", "csv"]) == 0
    csv = capsys.readouterr().out.splitlines()
    assert csv[0] == "encoder,shapes clean,shapes Linf 4/255"
    clean, robust = map(float, csv[1].split(",")[1:])
    assert 0 <= robust <= clean <= 100
    # the 4/255 cell is the worst case over aa and pgd, per sample
    from bench.report.leaderboard import load_samples

    samples = load_samples(out)
    attacked = samples[samples["eps"] > 0].pivot_table(index="id", columns="attack", values="adv")
    assert robust == pytest.approx(attacked.min(axis=1).mean(), abs=0.05)
    for fmt in ("md", "latex", "html"):
        assert main(["leaderboard", str(out), "--format", fmt, "--out", str(tmp_path / f"t.{fmt}")]) == 0
    assert main(["plot", str(out), "--out", str(tmp_path / "plot.png")]) == 0
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"


def test_a_point_outside_the_runs_ball_is_never_recorded(world, tmp_path, capsys):
    """torchattacks' CW has no eps: with a large step it leaves the 4/255 ball, and the run refuses."""
    out = tmp_path / "results"
    code = main(_args(world, out, "--attack", "torchattacks:CW", "--eps", "4/255",
                      "--attack-args", '{"lr": 0.05, "c": 10}'))
    err = capsys.readouterr().err
    assert code == 2 and "outside the linf ball" in err and len(err.strip().splitlines()) == 1
    recorded = [r for p in out.rglob("records.jsonl") for r in read_records(p)]
    assert len(recorded) < 24 and all(r["linf"] <= 4 / 255 + 1e-6 for r in recorded)


@pytest.mark.parametrize("attack", ["pgd", "aa"])
def test_per_sample_results_do_not_depend_on_the_batch_size(world, tmp_path, attack):
    """Random starts come from each sample's own seed: batches of 4 and of 24 give the same
    records (the records' batch-size field aside, which is part of the run's identity)."""
    runs = {}
    for size in ("4", "24"):
        out = tmp_path / size
        args = _args(world, out, "--attack", attack, "--eps", "64/255")
        args[args.index("--batch-size") + 1] = size
        assert main(args) == 0
        (records,) = _records(out).values()
        runs[size] = records
    assert runs["4"] == runs["24"]
    assert any(r["winner"] not in (None, "clean") for r in runs["4"])  # the attack did something


def test_save_examples_keeps_the_first_samples_as_pictures_and_the_site_shows_them(world, tmp_path):
    from PIL import Image

    out = tmp_path / "results"
    assert main(_args(world, out, "--attack", "apgd", "--eps", "64/255", "--save-examples", "3")) == 0
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    names = sorted(p.name for p in (run / "examples").iterdir())
    assert names == [f"{k:03d}_{kind}.png" for k in range(3) for kind in ("adv", "clean", "delta")]
    config = json.loads((run / "config.json").read_text())
    first = next(r for r in read_records(run / "records.jsonl") if r["id"] == config["sample_ids"][0])
    clean = np.asarray(Image.open(run / "examples" / "000_clean.png"), dtype=float) / 255
    adv = np.asarray(Image.open(run / "examples" / "000_adv.png"), dtype=float) / 255
    assert np.abs(adv - clean).max() <= 64 / 255 + 1 / 255  # the recorded point, within the ball (PNG rounding)
    assert (np.abs(adv - clean).max() > 0) == (first["linf"] > 0)
    site = tmp_path / "site"
    assert main(["site", str(out), "--out", str(site)]) == 0
    page = (site / "runs" / f"{run.name}.html").read_text()
    assert page.count("<img ") == 9 and (site / "runs" / run.name / "000_delta.png").is_file()


@pytest.mark.long
def test_the_committed_site_is_what_bench_site_makes_of_the_committed_runs(tmp_path, monkeypatch):
    """As scripts/tiny_site.sh makes it, from the repository's root: with the committed audit's flags
    (the page names the report by the path it was given)."""
    monkeypatch.chdir(ROOT)
    assert main(["site", "results/tiny/runs", "--audit", "results/tiny/audit.json",
                 "--out", str(tmp_path / "site")]) == 0
    committed = ROOT / "results" / "tiny" / "site"
    made = sorted(p.relative_to(tmp_path / "site") for p in (tmp_path / "site").rglob("*") if p.is_file())
    assert made == sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file())
    assert all((tmp_path / "site" / p).read_bytes() == (committed / p).read_bytes() for p in made)
