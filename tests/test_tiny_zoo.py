"""The shipped tiny robust zoo: cards, clean accuracies, the committed leaderboard, retraining."""
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import load_encoder
from bench.cli.main import main
from bench.run.evaluate import clean_accuracy
from bench.suites import get_suite, load_task
from bench.tiny import WEIGHTS
from bench.tiny.suite import ROBUST_METHODS

ROOT = Path(__file__).resolve().parent.parent
ZOO = [f"{method}-{eps}" for method in ROBUST_METHODS for eps in (2, 4)]


@pytest.mark.parametrize("name", ZOO)
def test_shipped_member_reproduces_its_card(name):
    card = json.loads((WEIGHTS / f"{name}.json").read_text())
    method, eps = name.rsplit("-", 1)
    assert card["method"] == method and card["eps_label"] == f"{eps}/255"
    assert card["base"]["source"] == "tiny:clip" and card["command"].startswith("bench train")
    assert (WEIGHTS / f"{name}.safetensors").stat().st_size < 2_000_000
    encoder, clip = load_encoder(name, suite="tiny"), load_encoder("clip", suite="tiny")
    assert encoder.provenance.sha256.split("+")[0] == clip.provenance.sha256  # text tower of the tiny clip
    tuned, base = encoder.clip.state_dict(), clip.clip.state_dict()
    assert all(torch.equal(tuned[k], base[k]) for k in base if not k.startswith("visual."))
    suite = get_suite("tiny")
    for task, expected in card["clean_zero_shot_accuracy"].items():
        assert clean_accuracy(encoder, load_task(suite, task, None)) == pytest.approx(expected, abs=0.01)


@pytest.mark.long
def test_committed_leaderboard_reproduces_on_a_subset(capsys):
    """What CI checks: part of results/tiny re-run from scratch gives the committed cells."""
    code = main(["reproduce", str(ROOT / "results" / "tiny"), "--encoders", "clip,fare-4",
                 "--tasks", "tiny-shape,tiny-colour", "--n-samples", "12"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, (out + captured.err)[-3000:]
    assert "reproduced: all" in out


@pytest.mark.long
def test_committed_vlm_cells_reproduce_on_a_subset(capsys):
    """The tiny-llava part of results/tiny: fare-4 on VQA and POPE (whose cell is an F1), re-run from scratch."""
    code = main(["reproduce", str(ROOT / "results" / "tiny"), "--encoders", "fare-4", "--tasks", "tiny-vqa,tiny-pope",
                 "--n-samples", "6"])
    captured = capsys.readouterr()
    assert code == 0, (captured.out + captured.err)[-3000:]
    assert "reproduced: all 4 cells" in captured.out  # clean and 4/255 of each


def test_cider_tasks_keep_the_committed_sample_count():
    from bench.cli.reproduce import read_manifest, select

    settings = read_manifest(ROOT / "results" / "tiny")
    chosen = select(settings, "clip", "tiny-shape,tiny-captions,tiny-vqa", 5, {"tiny-captions"})
    assert [(s["task"], s["n_samples"]) for s in chosen] == [("tiny-shape", 5), ("tiny-vqa", 5), ("tiny-captions", 50)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fare-2"])
def test_retraining_reproduces_a_shipped_member(name, tmp_path):
    """Re-runs the card's command (~3 min on 2 CPU cores) and compares the weights bit for bit."""
    from safetensors.torch import load_file

    card = json.loads((WEIGHTS / f"{name}.json").read_text())
    argv = shlex.split(card["command"])[1:]
    argv[argv.index("--out") + 1] = str(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "bench", *argv], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ours, shipped = load_file(str(tmp_path / "vision.safetensors")), load_file(str(WEIGHTS / f"{name}.safetensors"))
    assert ours.keys() == shipped.keys() and all(torch.equal(ours[k], shipped[k]) for k in ours)
