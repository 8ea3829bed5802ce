"""bench train for the tiny CLIP: outputs, card, exact resume after a real SIGKILL."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from bench.train.optim import lr_at, param_groups
from tests import bench_fixtures as fx

ROOT = Path(__file__).resolve().parent.parent


def _train(out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "bench", "train", "--suite", "tiny", "--method", "clip", "--steps", "30",
           "--batch-size", "16", "--warmup", "5", "--checkpoint-every", "5", "--out", str(out), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.long
def test_train_kill_and_resume_matches_an_uninterrupted_run(tmp_path):
    reference = _train(tmp_path / "reference")
    assert reference.wait(timeout=600) == 0, reference.stderr.read()
    killed = _train(tmp_path / "killed")
    fx.kill_when_exists(killed, tmp_path / "killed" / "train_state.pt")
    assert not (tmp_path / "killed" / "clip.safetensors").exists()
    resumed = _train(tmp_path / "killed", "--resume")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    a = load_file(str(tmp_path / "reference" / "clip.safetensors"))
    b = load_file(str(tmp_path / "killed" / "clip.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    card = json.loads((tmp_path / "reference" / "clip.json").read_text())
    assert set(card["clean_zero_shot_accuracy"]) == {"tiny-shape", "tiny-colour", "tiny-count"}
    assert card["recipe"]["steps"] == 30 and len(card["data_manifest_sha256"]) == 64
    assert card["command"].startswith("bench train")


def test_schedule_sets_the_lr_before_the_first_step():
    assert lr_at(0, 1.0, 10, 100) == 0.1  # step 0 already trains at warmup lr, not at 0 or base
    assert lr_at(9, 1.0, 10, 100) == 1.0
    assert lr_at(100, 1.0, 10, 100) == 0.0
    assert 0 < lr_at(55, 1.0, 10, 100) < 1.0


def test_no_weight_decay_on_norms_biases_and_embeddings():
    import open_clip

    import bench.encoders.load  # noqa: F401

    model = open_clip.create_model("tiny-clip", pretrained=None)
    decay, no_decay = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim >= 2 and "embedding" not in names[id(p)] for p in decay["params"])
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert {"positional_embedding", "token_embedding.weight", "logit_scale"} <= no_decay_names
    assert any("ln_" in n for n in no_decay_names) and any(n.endswith("bias") for n in no_decay_names)
