"""bench train --method sim-clip|fare|tecoa: the losses, the inner attack, outputs, resume, DDP."""
import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from attacks.core import attack_mode
from attacks.pgd import run_pgd
from bench import load_encoder
from bench.cli.main import main
from bench.train.methods import Batch, MethodObjective, ZeroShotHead, make_method
from bench.train.robust import VisionTower
from tests import bench_fixtures as fx

ROOT = Path(__file__).resolve().parent.parent
METHODS = [("fare", "frozen"), ("tecoa", "frozen"), ("sim-clip", "frozen"), ("sim-clip", "shared")]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return fx.folder_and_checkpoint(tmp_path_factory.mktemp("robust"), per_class=6)


def _args(folder: Path, checkpoint: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--suite", "paper", "--base", str(checkpoint), "--data", str(folder), "--eps", "4/255",
            "--steps", "3", "--batch-size", "8", "--warmup", "1", "--lr", "1e-3", "--holdout", "8",
            "--inner-steps", "3", "--eval-every", "3", "--out", str(out), *extra]


@pytest.mark.parametrize("method,anchor", METHODS)
def test_each_method_fine_tunes_the_vision_tower_only(world, tmp_path, method, anchor):
    folder, checkpoint = world
    assert main(_args(folder, checkpoint, tmp_path, "--method", method, "--anchor", anchor)) == 0
    base, tuned = load_encoder(str(checkpoint)), load_encoder(str(tmp_path / "vision.safetensors"))
    assert tuned.provenance.source == f"{checkpoint} + {tmp_path / 'vision.safetensors'}"
    b, t = base.clip.state_dict(), tuned.clip.state_dict()
    assert all(torch.equal(b[k], t[k]) for k in b if not k.startswith("visual."))  # text tower untouched
    assert any(not torch.equal(b[k], t[k]) for k in b if k.startswith("visual."))
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["method"] == method and card["eps"] == pytest.approx(4 / 255) and card["recipe"]["steps"] == 3
    assert card["base"]["sha256"] == base.provenance.sha256 and card["command"].startswith("bench train")
    assert 0 <= card["metrics"]["robust_accuracy"] <= card["metrics"]["clean_accuracy"] <= 1


def _batch(encoder, folder):
    from tasks.imagefolder import load_batch, read_image_folder
    from tasks.zeroshot import class_weights

    data = read_image_folder(folder, "shapes")
    x = load_batch(folder, data.ids[:12], encoder.image_size)
    labels = torch.tensor(data.labels[:12])
    head = ZeroShotHead(class_weights(encoder, data.classnames, data.templates))
    return Batch(x, labels, torch.ones(12, len(data.classnames), dtype=torch.bool)), head


@pytest.mark.parametrize("method,anchor", METHODS)
def test_inner_pgd_raises_each_methods_own_loss_within_the_ball(world, method, anchor):
    folder, checkpoint = world
    encoder = load_encoder(str(checkpoint))
    batch, head = _batch(encoder, folder)
    tower = VisionTower(encoder)
    frozen = VisionTower(load_encoder(str(checkpoint)))
    m = make_method(method, anchor, frozen, head)
    reference = m.reference(tower, batch)
    objective = MethodObjective(m, tower, batch, reference, contextlib.nullcontext)
    everything = torch.arange(12)
    with attack_mode(tower):
        x_adv = run_pgd(objective, batch.x, eps=4 / 255, steps=10, step_size=1 / 255, seed=0,
                        stop_on_success=False).x_adv
        with torch.no_grad():
            before, after = objective(batch.x, everything).loss, objective(x_adv, everything).loss
    assert (x_adv - batch.x).abs().max() <= 4 / 255 + 1e-6
    assert after.mean() > before.mean()
    if method == "fare":  # the definition: squared L2 to the frozen original, summed over dims
        with torch.no_grad():
            expected = (tower(x_adv) - frozen(batch.x)).pow(2).sum(-1)
        assert torch.allclose(after, expected, rtol=1e-5)


def test_tecoa_scores_a_sample_only_against_its_own_datasets_classes():
    torch.manual_seed(0)
    head = ZeroShotHead(F.normalize(torch.randn(7, 16), dim=-1))
    allowed = torch.zeros(2, 7, dtype=torch.bool)
    allowed[0, :4], allowed[1, 4:] = True, True  # two datasets: classes 0-3 and 4-6
    embedding, labels = torch.randn(2, 16), torch.tensor([2, 5])
    z = head.logits(embedding, allowed)
    own = [100 * F.normalize(embedding[0], dim=-1) @ head.weights[:4].T,
           100 * F.normalize(embedding[1], dim=-1) @ head.weights[4:].T]
    expected = torch.stack([F.cross_entropy(own[0][None], torch.tensor([2])),
                            F.cross_entropy(own[1][None], torch.tensor([1]))])
    assert torch.allclose(F.cross_entropy(z, labels, reduction="none"), expected, atol=1e-5)


def _train(folder: Path, checkpoint: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "bench", *_args(folder, checkpoint, out, "--method", "fare", *extra)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.long
def test_kill_and_resume_matches_an_uninterrupted_run(world, tmp_path):
    folder, checkpoint = world
    steps = ["--steps", "12", "--checkpoint-every", "3"]
    reference = _train(folder, checkpoint, tmp_path / "reference", *steps)
    assert reference.wait(timeout=600) == 0, reference.stderr.read()
    killed = _train(folder, checkpoint, tmp_path / "killed", *steps)
    fx.kill_when_exists(killed, tmp_path / "killed" / "train_state.pt")
    assert not (tmp_path / "killed" / "vision.safetensors").exists()
    resumed = _train(folder, checkpoint, tmp_path / "killed", *steps, "--resume")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    a = load_file(str(tmp_path / "reference" / "vision.safetensors"))
    b = load_file(str(tmp_path / "killed" / "vision.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_other_settings_is_a_one_line_error(world, tmp_path, capsys):
    folder, checkpoint = world
    assert main(_args(folder, checkpoint, tmp_path, "--method", "fare")) == 0
    assert main(_args(folder, checkpoint, tmp_path, "--method", "fare", "--lr", "5e-4", "--resume")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "other settings" in err


def test_resume_with_another_base_or_data_is_refused(world, tmp_path, capsys):
    folder, checkpoint = world
    other_data = fx.make_image_folder(tmp_path / "other" / "shapes", per_class=6, seed=1)
    other_base = fx.save_full_safetensors(fx.random_model(seed=3), tmp_path / "other" / "base.safetensors")
    out = tmp_path / "run"
    assert main(_args(folder, checkpoint, out, "--method", "fare")) == 0
    for swapped, what in ((_args(other_data, checkpoint, out, "--method", "fare", "--resume"), "data"),
                          (_args(folder, other_base, out, "--method", "fare", "--resume"), "base")):
        assert main(swapped) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "other settings" in err and what in err


def test_an_unknown_method_suggests_the_closest(tmp_path, capsys):
    assert main(["train", "--method", "far", "--out", str(tmp_path)]) == 2
    assert "unknown method 'far'; did you mean 'fare'" in capsys.readouterr().err


def test_a_diverging_run_stops_with_a_one_line_error(world, tmp_path, capsys):
    folder, checkpoint = world
    assert main(_args(folder, checkpoint, tmp_path, "--method", "tecoa", "--lr", "1e12")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "lower --lr" in err and not (tmp_path / "vision.safetensors").exists()


@pytest.mark.long
@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun is not installed")
def test_torchrun_two_processes_with_gloo_train_and_write_one_checkpoint(world, tmp_path):
    folder, checkpoint = world
    torchrun = str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "bench",
                           *_args(folder, checkpoint, tmp_path / "ddp", "--method", "sim-clip")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["card.json", "train_state.pt",
                                                                     "vision.safetensors"]
    card = json.loads((tmp_path / "ddp" / "card.json").read_text())
    assert card["processes"] == 2
    tuned = load_encoder(str(tmp_path / "ddp" / "vision.safetensors"))
    assert all(torch.isfinite(p).all() for p in tuned.parameters())


@pytest.mark.parametrize("argv,needle", [
    (["train", "--suite", "paper", "--method", "fare"], "needs --data"),
    (["train", "--method", "fare", "--eps", "4"], "did you mean 4/255"),
    (["train", "--method", "fare", "--eps", "0"], "eps > 0"),
    (["train", "--suite", "paper", "--method", "clip"], "tiny only"),
    (["train", "--method", "tecoa", "--base", "fare-9"], "fare-4"),
    (["train", "--suite", "paper", "--method", "fare", "--data", "/nonexistent/imagenet"], "does not exist"),
])
def test_bad_training_input_is_one_line_and_exit_2(tmp_path, capsys, argv, needle):
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err, err
    assert not (tmp_path / "out").exists()


def test_paper_recipes_use_robustvlms_optimiser_and_the_simclip_scripts_inner_loss(world, tmp_path):
    folder, checkpoint = world
    assert main(_args(folder, checkpoint, tmp_path / "script", "--method", "sim-clip")) == 0
    assert main(_args(folder, checkpoint, tmp_path / "cosine", "--method", "sim-clip", "--inner-loss", "method",
                      "--betas", "0.9,0.95", "--no-decay-all")) == 0
    script = json.loads((tmp_path / "script" / "card.json").read_text())["recipe"]
    cosine = json.loads((tmp_path / "cosine" / "card.json").read_text())["recipe"]
    assert (script["inner_loss"], script["betas"], script["decay_all"]) == ("l2", [0.9, 0.999], True)
    assert (cosine["inner_loss"], cosine["betas"], cosine["decay_all"]) == ("method", [0.9, 0.95], False)
    a = load_file(str(tmp_path / "script" / "vision.safetensors"))
    b = load_file(str(tmp_path / "cosine" / "vision.safetensors"))
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_bad_betas_are_one_line(world, tmp_path, capsys):
    folder, checkpoint = world
    assert main(_args(folder, checkpoint, tmp_path, "--method", "fare", "--betas", "0.9")) == 2
    assert "is not two numbers" in capsys.readouterr().err
