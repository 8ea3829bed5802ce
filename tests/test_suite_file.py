"""Suite files: `bench run --config FILE` is the equivalent command, run for run, and the committed
suite files (the tiny leaderboard's, each paper's) say what they claim."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.api.run_settings import parse_settings, settings_argv
from bench.api.suite_file import read_suite_file
from bench.cli.main import main
from bench.encoders.sources import is_source
from bench.run.attack_names import resolve_attack
from bench.run.eps import eps_label, parse_eps_list
from bench.run.store import RECORD_FILES, finished_runs
from bench.suites import check_task_name, expand_tasks, get_suite
from bench.vlm import check_vlm_name

ROOT = Path(__file__).resolve().parent.parent
SUITE = """about = "two runs"
suite = "tiny"
seed = 3
steps = 4
batch_size = 4

[[run]]
encoder = ["clip", "fare-4"]
task = ["tiny-shape"]
attack = "apgd"
eps = ["0", "4/255"]
n_samples = 6
attack_args = { restarts = 1 }

[[run]]
encoder = "clip"
task = "tiny-colour"
attack = "pgd"
eps = "2/255"
n_samples = 5
"""
COMMANDS = [
    ["--suite", "tiny", "--seed", "3", "--steps", "4", "--batch-size", "4", "--encoder", "clip,fare-4",
     "--task", "tiny-shape", "--attack", "apgd", "--eps", "0,4/255", "--n-samples", "6",
     "--attack-args", '{"restarts": 1}'],
    ["--suite", "tiny", "--seed", "3", "--steps", "4", "--batch-size", "4", "--encoder", "clip", "--task",
     "tiny-colour", "--attack", "pgd", "--eps", "2/255", "--n-samples", "5"],
]


def folders(out: Path) -> dict[str, tuple[dict, dict[str, bytes]]]:
    """Each run folder: its config without the command, and its records files' bytes."""
    found = {}
    for run in sorted(out.iterdir()):
        config = json.loads((run / "config.json").read_text())
        config.pop("command")
        found[run.name] = (config, {p.name: p.read_bytes() for p in run.glob(RECORD_FILES)})
    return found


def test_a_suite_file_and_the_equivalent_commands_make_identical_run_folders(tmp_path):
    (tmp_path / "suite.toml").write_text(SUITE)
    assert main(["run", "--config", str(tmp_path / "suite.toml"), "--out", str(tmp_path / "from-file")]) == 0
    for argv in COMMANDS:
        assert main(["run", *argv, "--out", str(tmp_path / "from-commands")]) == 0
    from_file, from_commands = folders(tmp_path / "from-file"), folders(tmp_path / "from-commands")
    assert len(from_file) == 5 and from_file == from_commands


def test_flags_beside_the_file_override_every_run(tmp_path):
    (tmp_path / "suite.toml").write_text(SUITE)
    out = tmp_path / "runs"
    assert main(["run", "--config", str(tmp_path / "suite.toml"), "--n-samples", "2", "--steps=2",
                 "--out", str(out)]) == 0
    runs = finished_runs([out])
    assert {len(records) for _, _, records in runs} == {2} and {c["steps"] for _, c, _ in runs} == {2}
    assert all(c["command"][:3] == ["bench", "run", "--config"] for _, c, _ in runs)


def test_every_run_is_checked_before_the_first_starts(tmp_path, capsys):
    (tmp_path / "suite.toml").write_text(SUITE.replace('task = "tiny-colour"', 'task = "tiny-colur"'))
    assert main(["run", "--config", str(tmp_path / "suite.toml"), "--out", str(tmp_path / "runs")]) == 2
    assert "did you mean 'tiny-colour'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def check_names(path: Path) -> list[dict]:
    """Every name of every run resolves in its suite (no data or weights needed)."""
    runs = read_suite_file(path)
    for number, settings in enumerate(runs, 1):
        args = parse_settings(settings_argv(settings, f"{path} {number}"), str(path))
        suite = get_suite(args.suite)
        for encoder in args.encoder.split(","):
            # a zoo name or a source such as hf-hub:ORG/NAME (resolving it may need the hub)
            assert encoder in suite.encoders or is_source(encoder), encoder
        tasks = expand_tasks(suite, args.task.split(","))
        for task in tasks:
            check_task_name(suite, task)
        if any(suite.is_vlm_task(t) for t in tasks):
            check_vlm_name(args.vlm or suite.default_vlm, suite.vlms())
        resolve_attack(args.attack)
        parse_eps_list(args.eps)
    return runs


def test_the_committed_tiny_suite_file_made_the_committed_runs():
    """Each (encoder, task, eps) of results/tiny/suite.toml is a committed run with its settings, and
    every committed run is one of them."""
    listed = set()
    for settings in check_names(ROOT / "results" / "tiny" / "suite.toml"):
        args = parse_settings(settings_argv(settings, "tiny"), "tiny")
        assert args.out == Path("results/tiny/runs")
        for encoder in args.encoder.split(","):
            for task in args.task.split(","):
                for label, value in parse_eps_list(args.eps):
                    listed.add((encoder, task, eps_label(value), args.n_samples, args.steps, args.seed))
    committed = {(c["encoder"], c["task"], c["eps_label"], len(c["sample_ids"]), c["steps"], c["seed"])
                 for _, c, _ in finished_runs([ROOT / "results" / "tiny" / "runs"])}
    assert listed == committed


@pytest.mark.parametrize("paper", ["sim-clip", "fare", "delta-clip"])
def test_each_papers_suite_file_is_what_bench_paper_writes_and_names_real_runs(paper, tmp_path):
    committed = ROOT / "suites" / f"{paper}.toml"
    check_names(committed)
    out = tmp_path / f"{paper}.toml"
    subprocess.run([sys.executable, "-m", "bench", "paper", paper, "--suite", "paper", "--format", "toml",
                    "--out", str(out)], check=True, cwd=tmp_path, capture_output=True)
    assert out.read_text() == committed.read_text()
