"""The tiny suite end to end: the default command offline on an empty cache, the shipped model."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import load_encoder
from bench.run.evaluate import clean_accuracy
from bench.suites import get_suite, load_task
from bench.tiny import WEIGHTS, world

ROOT = Path(__file__).resolve().parent.parent
CARD = json.loads((WEIGHTS / "clip.json").read_text())


@pytest.mark.long
def test_default_command_runs_offline_on_an_empty_cache(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BENCH_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--encoder", "clip", "--attack", "apgd",
                           "--eps", "4/255", "--n-samples", "24", "--out", str(tmp_path / "results")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    header = lines[0].split()
    assert header[:4] == ["encoder", "task", "attack", "eps"]
    for task in ("tiny-shape", "tiny-colour", "tiny-count"):
        row = next(line.split() for line in lines if f" {task} " in line)
        assert row[2:4] == ["apgd", "4/255"]
        clean, robust = float(row[-3]), float(row[-2])  # ... metric, clean, robust, run
        assert robust < clean  # the tiny clip collapses under attack
    assert (tmp_path / "home" / f"tiny-world-v{world.VERSION}-seed0" / "manifest.json").is_file()


def test_shipped_clip_reproduces_its_card():
    from bench.tiny.suite import world_root

    manifest = json.loads((world_root() / "manifest.json").read_text())
    # trained on the version-1 world, whose files today's world keeps byte for byte
    assert world.manifest_digest(world.manifest_as_of(manifest, 1)) == CARD["data_manifest_sha256"]
    encoder = load_encoder("clip", suite="tiny")
    assert encoder.provenance.sha256 == CARD["weights_sha256"]
    suite = get_suite("tiny")
    for task, expected in CARD["clean_zero_shot_accuracy"].items():
        assert clean_accuracy(encoder, load_task(suite, task, None)) == pytest.approx(expected, abs=0.01)


def test_shipped_weights_are_small():
    assert (WEIGHTS / "clip.safetensors").stat().st_size < 5_000_000


@pytest.mark.slow
def test_retraining_reproduces_the_shipped_weights(tmp_path):
    """Retrains with the card's recipe (~25 min on 2 CPU cores) and compares bit for bit."""
    from safetensors.torch import load_file

    recipe = CARD["recipe"]
    cmd = [sys.executable, "-m", "bench", "train", "--suite", "tiny", "--method", "clip",
           "--steps", str(recipe["steps"]), "--batch-size", str(recipe["batch_size"]), "--lr", str(recipe["lr"]),
           "--wd", str(recipe["wd"]), "--warmup", str(recipe["warmup"]), "--seed", str(recipe["seed"]),
           "--out", str(tmp_path)]
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True)
    ours, shipped = load_file(str(tmp_path / "clip.safetensors")), load_file(str(WEIGHTS / "clip.safetensors"))
    assert all((ours[k] == shipped[k]).all() for k in shipped)


def test_the_world_is_verified_once_per_process(monkeypatch):
    from bench.tiny import suite, world

    root = suite.world_root()
    calls = []
    monkeypatch.setattr(world, "verify", lambda r: calls.append(r) or True)
    assert suite.world_root() == root and suite.world_root(str(root)) == root
    assert calls == []  # already verified by this process
