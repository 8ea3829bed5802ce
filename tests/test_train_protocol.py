"""bench train follows the reference training code exactly where the paper suite says it does.

Each reference behaviour is re-implemented here, test-locally, from reading the reference code
(RobustVLM: train/pgd_train.py `pgd`, train/adversarial_training_clip.py `compute_loss` / `l2` /
`ce` / `train_one_epoch`; open_clip src/training/scheduler.py `cosine_lr`; Sim-CLIP:
train/adversarial_training_simclip.py `forward` / `train_one_epoch`), and compared with what
`bench train` runs on the same tiny model, images and initial noise.
"""
import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

from bench import load_encoder
from bench.cli.main import main
from bench.train.images import (
    IMAGENET_WNIDS_SHA256,
    NAMES_FROM_OPENCLIP,
    ROBUSTVLM_TEMPLATE,
    is_imagenet_1k,
    read_training_images,
)
from bench.train.inner import INNER_ATTACKS
from bench.train.methods import ANCHORS, Batch, InnerL2, ZeroShotHead, make_method
from bench.train.optim import SCHEDULES, lr_at
from bench.train.robust import (
    PRECISIONS,
    RobustRecipe,
    VisionTower,
    autocast_for,
    inner_attack,
)
from tests import bench_fixtures as fx

EPS, STEP = 4 / 255, 1 / 255


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return fx.folder_and_checkpoint(tmp_path_factory.mktemp("protocol"), per_class=6)


# ---- a transcription of RobustVLM's train/pgd_train.py `pgd` (norm linf, mode max) ------------------

def transcribed_pgd(forward, loss_fn, data_clean, targets, eps, iterations, stepsize, perturbation, momentum=0.9):
    velocity = torch.zeros_like(data_clean)
    for _ in range(iterations):
        perturbation.requires_grad = True
        with torch.enable_grad():
            loss = loss_fn(forward(data_clean + perturbation), targets)
        with torch.no_grad():
            gradient = torch.autograd.grad(loss, perturbation)[0]
            gradient[gradient.isnan()] = 0.0
            gradient = gradient.sign()  # normalize_grad, linf
            velocity = momentum * velocity + gradient
            velocity = velocity.sign()
            perturbation = perturbation + stepsize * velocity  # mode 'max'
            perturbation = torch.clamp(perturbation, -eps, eps)  # project_perturbation, linf
            perturbation = torch.clamp(data_clean + perturbation, 0, 1) - data_clean
    return data_clean + perturbation.detach()


def reference_start(x: torch.Tensor, seed: int) -> torch.Tensor:
    """adversarial_training_clip.py's start, torch.zeros_like(data).uniform_(-eps, eps), from the
    global generator seeded as bench train seeds its attack."""
    torch.manual_seed(seed)
    return torch.zeros_like(x).uniform_(-EPS, EPS)


def reference_l2(out, targets):  # compute_loss('l2', reduction 'mean'): summed over dims, batch mean
    return torch.mean(F.mse_loss(out, targets, reduction="none").sum(dim=1))


class _Gate(torch.autograd.Function):
    """Identity forward; backward NaN below 0.3 and 0 on [0.3, 0.6): pixels whose gradient is NaN,
    zero, or switches between zero and non-zero as the attack moves them."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        grad = torch.where(x < 0.6, torch.zeros_like(grad), grad)
        return torch.where(x < 0.3, torch.full_like(grad, float("nan")), grad)


class Gated(torch.nn.Module):
    def __init__(self, tower: torch.nn.Module) -> None:
        super().__init__()
        self.tower = tower

    def forward(self, x):
        return self.tower(_Gate.apply(x))


def _setup(world, gated: bool):
    from tasks.imagefolder import load_batch, read_image_folder
    from tasks.zeroshot import class_weights

    folder, checkpoint = world
    encoder = load_encoder(str(checkpoint))
    tower, frozen = VisionTower(encoder), VisionTower(load_encoder(str(checkpoint))).requires_grad_(False)
    torch.manual_seed(1)  # a trained-looking tower: not the frozen copy, so FARE's loss is not at its minimum
    with torch.no_grad():
        for p in tower.parameters():
            p.add_(0.02 * torch.randn_like(p))
    if gated:
        tower, frozen = Gated(tower), Gated(frozen)
    data = read_image_folder(folder, "shapes")
    x = load_batch(folder, data.ids[:12], encoder.image_size)
    labels = torch.tensor(data.labels[:12])
    text = class_weights(encoder, data.classnames, data.templates)
    batch = Batch(x, labels, torch.ones(12, len(data.classnames), dtype=torch.bool))
    return tower, frozen, ZeroShotHead(text), text, batch


def _recipe(method: str, momentum: float = 0.9) -> RobustRecipe:
    return RobustRecipe(method=method, eps=EPS, steps=1, batch_size=12, lr=1e-5, wd=1e-4, warmup=0,
                        inner_attack="robustvlm", inner_momentum=momentum, inner_steps=10, inner_step_size=STEP)


@pytest.mark.parametrize("gated", [False, True], ids=["tiny-clip", "gated"])
@pytest.mark.parametrize("method", ["fare", "tecoa", "sim-clip"])
def test_inner_attack_is_robustvlms_pgd(world, method, gated):
    """FARE: inner l2 on unnormalised embeddings; TeCoA: inner ce on 100 * normalised embedding @ text
    (--output_normalize True); Sim-CLIP: the script's --attack_loss l2 to the frozen original. Same
    seed, same start, same 10 steps: the same perturbation, to the bit."""
    tower, frozen, head, text, batch = _setup(world, gated)
    recipe = _recipe(method)
    chosen = make_method(method, "script", frozen, head)
    if method == "sim-clip":
        chosen = InnerL2(chosen)
    reference = chosen.reference(tower, batch)
    seed = 1234
    ours = inner_attack(chosen, tower, batch, reference, recipe, seed, autocast_for(batch.x.device, "fp32"))

    with torch.no_grad():
        orig = frozen(batch.x)
    if method == "tecoa":
        def forward(x):
            return F.normalize(tower(x), dim=-1)

        def loss_fn(out, targets):
            return F.cross_entropy(out @ (100.0 * text.T), targets)
    else:
        forward, loss_fn = tower, reference_l2
    targets = batch.labels if method == "tecoa" else orig
    start = reference_start(batch.x, seed)
    theirs = transcribed_pgd(forward, loss_fn, batch.x, targets, EPS, 10, STEP, start.clone())

    assert torch.isfinite(ours).all()
    assert torch.equal(ours, theirs)
    assert (ours - batch.x).abs().max() <= EPS + 1e-6 and ours.min() >= 0 and ours.max() <= 1
    if gated:  # the momentum matters here: without it (or with plain PGD) the perturbation differs
        no_momentum = transcribed_pgd(forward, loss_fn, batch.x, targets, EPS, 10, STEP, start.clone(), momentum=0.0)
        assert not torch.equal(no_momentum, theirs)
        assert not torch.equal(inner_attack(chosen, tower, batch, reference, _recipe(method, 0.0), seed,
                                            autocast_for(batch.x.device, "fp32")), ours)


def test_simclip_script_loss_is_the_scripts_two_terms(world):
    """adversarial_training_simclip.py: loss1 = forward(adv, orig), loss2 = forward(orig, adv), total
    = loss1/2 + loss2/2 with forward(p, z) = -cos(p, z.detach()).mean(): the value of `frozen`'s
    single term and half its gradient, to the bit."""
    tower, frozen, head, _, batch = _setup(world, gated=False)
    x_adv = (batch.x + EPS * torch.sign(torch.randn_like(batch.x))).clamp(0, 1)

    def grads(loss):
        tower.zero_grad(set_to_none=True)
        loss.backward()
        return [p.grad.clone() for p in tower.parameters()]

    script, single = make_method("sim-clip", "script", frozen, head), make_method("sim-clip", "frozen", frozen, head)
    ours = script.train_loss(tower, batch, x_adv, script.reference(tower, batch))
    ours_grads = grads(ours)

    def forward(p, z):
        return -F.cosine_similarity(p, z.detach(), dim=-1).mean()

    with torch.no_grad():
        orig = frozen(batch.x)
    adv = tower(x_adv)
    theirs = forward(adv, orig) / 2 + forward(orig, adv) / 2
    assert torch.equal(ours.detach(), theirs.detach())
    assert all(torch.equal(a, b) for a, b in zip(ours_grads, grads(theirs)))
    one = single.train_loss(tower, batch, x_adv, single.reference(tower, batch))
    assert torch.equal(one.detach(), ours.detach())
    assert all(torch.allclose(a, b / 2, rtol=1e-5, atol=1e-9) for a, b in zip(ours_grads, grads(one)))


def test_robustvlm_schedule_is_cosine_lr_stepped_after_each_update():
    """RobustVLM builds AdamW at --lr, then calls cosine_lr's adjuster with the number of steps done
    after every optimiser step: the lr each step trains at, transcribed, against lr_at."""
    def cosine_lr(base_lr, warmup_length, steps):
        def adjust(step):
            if step < warmup_length:
                return base_lr * (step + 1) / warmup_length
            return 0.5 * (1 + np.cos(np.pi * (step - warmup_length) / (steps - warmup_length))) * base_lr
        return adjust

    for base, warmup, steps in ((1e-5, 1400, 20000), (1e-5, 1400, 10000), (3e-4, 7, 50)):
        adjust, lr, used = cosine_lr(base, warmup, steps), base, []
        for done in range(steps):
            used.append(lr)
            lr = adjust(done + 1)
        assert [lr_at(k, base, warmup, steps, "robustvlm") for k in range(steps)] == used
        ours = [lr_at(k, base, warmup, steps, "ours") for k in range(steps)]
        assert ours[0] == base / warmup != used[0]
        assert all(a == pytest.approx(b, rel=1e-12) for a, b in zip(ours[1:], used[1:]))


# ---- bench train: defaults, options, the card --------------------------------------------------------

def _args(folder: Path, checkpoint: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--suite", "paper", "--base", str(checkpoint), "--data", str(folder), "--eps", "4/255",
            "--steps", "2", "--batch-size", "8", "--warmup", "1", "--lr", "1e-3", "--holdout", "8",
            "--inner-steps", "2", "--eval-every", "2", "--out", str(out), *extra]


def _card(out: Path) -> dict:
    return json.loads((out / "card.json").read_text())


def test_paper_defaults_are_the_references_and_the_card_records_every_option(world, tmp_path):
    folder, checkpoint = world
    assert main(_args(folder, checkpoint, tmp_path / "fare", "--method", "fare")) == 0
    card = _card(tmp_path / "fare")
    recipe = card["recipe"]
    assert (recipe["inner_attack"], recipe["inner_momentum"], recipe["schedule"], recipe["precision"]) == \
        ("robustvlm", 0.9, "robustvlm", "fp32")
    assert (recipe["betas"], recipe["decay_all"], recipe["inner_steps"]) == ([0.9, 0.999], True, 2)
    assert recipe["inner_step_size"] == pytest.approx(1 / 255) and card["bf16_autocast"] is False
    assert card["suite"] == "paper" and card["no_weight_decay_on"].startswith("nothing")
    assert card["class_names_and_templates"]["shapes"] == {"class_names": "classnames.txt",
                                                           "templates": ["a photo of a {}.", "a drawing of a {}."]}
    # Every option of `bench train` is in the card (or only says where files go, or how fast data loads).
    dests = {a.dest for a in _train_parser()._actions if not isinstance(a, argparse._HelpAction)}
    unrecorded = {d for d in dests - {"out", "resume", "workers"} if d not in card and d not in recipe}
    assert not unrecorded, unrecorded


def test_tiny_defaults_keep_the_tiny_zoos_recipe(world, tmp_path):
    """The shipped tiny zoo's cards retrain it bit for bit: its suite keeps the project's PGD, our
    schedule and the single-term frozen Sim-CLIP loss."""
    folder, checkpoint = world
    args = _args(folder, checkpoint, tmp_path, "--method", "sim-clip")
    args[args.index("paper")] = "tiny"
    assert main(args) == 0
    recipe = _card(tmp_path)["recipe"]
    assert (recipe["inner_attack"], recipe["schedule"], recipe["precision"], recipe["anchor"]) == \
        ("pgd", "ours", "fp32", "frozen")


def _weights_differ(one: Path, other: Path) -> bool:
    """Whether two training runs saved different vision weights."""
    a, b = (load_file(str(run / "vision.safetensors")) for run in (one, other))
    return any(not torch.equal(a[k], b[k]) for k in a)


def test_simclip_paper_default_is_the_scripts_loss_and_inner_attack(world, tmp_path):
    folder, checkpoint = world
    assert main(_args(folder, checkpoint, tmp_path / "script", "--method", "sim-clip")) == 0
    assert main(_args(folder, checkpoint, tmp_path / "single", "--method", "sim-clip", "--anchor", "frozen")) == 0
    script, single = _card(tmp_path / "script")["recipe"], _card(tmp_path / "single")["recipe"]
    assert (script["anchor"], script["inner_loss"], script["inner_attack"]) == ("script", "l2", "robustvlm")
    assert single["anchor"] == "frozen"
    assert _weights_differ(tmp_path / "script", tmp_path / "single")


def test_bf16_is_a_named_option_and_changes_the_run(world, tmp_path):
    folder, checkpoint = world
    assert main(_args(folder, checkpoint, tmp_path / "fp32", "--method", "tecoa")) == 0
    assert main(_args(folder, checkpoint, tmp_path / "bf16", "--method", "tecoa", "--precision", "bf16")) == 0
    fp32, bf16 = _card(tmp_path / "fp32"), _card(tmp_path / "bf16")
    assert (fp32["recipe"]["precision"], fp32["bf16_autocast"]) == ("fp32", False)
    assert (bf16["recipe"]["precision"], bf16["bf16_autocast"]) == ("bf16", True)
    assert _weights_differ(tmp_path / "fp32", tmp_path / "bf16")


def test_the_project_pgd_and_our_schedule_remain_options(world, tmp_path):
    folder, checkpoint = world
    assert main(_args(folder, checkpoint, tmp_path / "exact", "--method", "fare")) == 0
    assert main(_args(folder, checkpoint, tmp_path / "ours", "--method", "fare", "--inner-attack", "pgd",
                      "--schedule", "ours")) == 0
    recipe = _card(tmp_path / "ours")["recipe"]
    assert (recipe["inner_attack"], recipe["schedule"]) == ("pgd", "ours")
    assert _weights_differ(tmp_path / "exact", tmp_path / "ours")


def test_momentum_without_the_momentum_attack_is_one_line(world, tmp_path, capsys):
    folder, checkpoint = world
    assert main(_args(folder, checkpoint, tmp_path, "--method", "fare", "--inner-attack", "pgd",
                      "--inner-momentum", "0.5")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--inner-attack robustvlm" in err


def _train_parser() -> argparse.ArgumentParser:
    from bench.cli.train import add_parser

    sub = argparse.ArgumentParser().add_subparsers()
    add_parser(sub)
    return sub.choices["train"]


def test_cli_choices_are_the_codes():
    choices = {a.dest: tuple(a.choices) for a in _train_parser()._actions if a.choices}
    assert set(choices["inner_attack"]) == set(INNER_ATTACKS) and set(choices["schedule"]) == set(SCHEDULES)
    assert set(choices["precision"]) == set(PRECISIONS) and set(choices["anchor"]) == set(ANCHORS)


# ---- class names and templates -----------------------------------------------------------------------

def _wnids() -> list[str]:
    from clip_benchmark.datasets.builder import all_imagenet_wordnet_ids

    return sorted(all_imagenet_wordnet_ids)


def test_imagenet_wnids_are_recognised_exactly():
    wnids = _wnids()
    assert len(wnids) == 1000 and is_imagenet_1k(wnids)
    assert not is_imagenet_1k(wnids[:-1]) and not is_imagenet_1k([*wnids[:-1], "n99999999"])
    assert not is_imagenet_1k(list(reversed(wnids)))
    import hashlib

    assert hashlib.sha256("\n".join(wnids).encode()).hexdigest() == IMAGENET_WNIDS_SHA256


def test_imagenet_folder_without_files_gets_openais_names_and_robustvlms_template(tmp_path):
    import open_clip

    root = tmp_path / "train"
    pixel = Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8))
    for wnid in _wnids():
        (root / wnid).mkdir(parents=True)
        pixel.save(root / wnid / "0.png")
    data = read_training_images([("imagenet", root)])
    (d,) = data.datasets
    assert d.classnames == list(open_clip.IMAGENET_CLASSNAMES) and d.classnames[0] == "tench"
    assert d.templates == [ROBUSTVLM_TEMPLATE] == ["This is a photo of a {}"]
    assert data.provenance()["imagenet"]["class_names"] == NAMES_FROM_OPENCLIP
    assert d.labels[:2] == [0, 1] and d.ids[0] == "n01440764/0.png"


def test_other_folders_without_classnames_are_refused_in_one_line(world, tmp_path, capsys):
    _, checkpoint = world
    bare = fx.make_image_folder(tmp_path / "bare", per_class=4)
    (bare / "classnames.txt").unlink()
    assert main(_args(bare, checkpoint, tmp_path / "out", "--method", "fare")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "classnames.txt is missing" in err and str(bare) in err
    assert not (tmp_path / "out").exists()


def test_a_folder_without_templates_gets_robustvlms_template(tmp_path):
    folder = fx.make_image_folder(tmp_path / "shapes", per_class=2)
    (folder / "templates.txt").unlink()
    data = read_training_images([("shapes", folder)])
    assert data.datasets[0].templates == [ROBUSTVLM_TEMPLATE]
    assert data.datasets[0].classnames == fx.CLASSES



# ---- images ------------------------------------------------------------------------------------------

def test_training_images_are_read_as_robustvlm_reads_them(tmp_path):
    """ImageFolder's loader (RGB) then open_clip's transform without Normalize: Resize(224, bicubic),
    CenterCrop(224), ToTensor (adversarial_training_clip.py's preprocessor_without_normalize), on
    sizes where truncating / rounding the longer side and the crop offset differ (500 x 375: 298
    wide, not 299; 301 x 224: offset round(38.5) = 38)."""
    from torchvision import transforms

    from bench.train.images import ImageRows

    reference = transforms.Compose([transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC),
                                    transforms.CenterCrop(224), transforms.ToTensor()])
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    sizes = [(500, 375), (375, 500), (301, 224), (333, 250)]
    for k, (w, h) in enumerate(sizes):
        (root / f"c{k}").mkdir(parents=True)
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(root / f"c{k}" / "0.jpg")
    (root / "classnames.txt").write_text("".join(f"class {k}\n" for k in range(len(sizes))))
    data = read_training_images([("photos", root)])
    rows = ImageRows(data, 224)
    for k in range(len(sizes)):
        with Image.open(root / f"c{k}" / "0.jpg") as f:
            expected = reference(f.convert("RGB"))
        x, label, dataset = rows[k]
        assert (label, dataset) == (k, 0) and torch.equal(x, expected), sizes[k]


@pytest.mark.parametrize("flag,value,needle", [
    ("--inner-attack", "apgd", "invalid choice"), ("--schedule", "linear", "invalid choice"),
    ("--precision", "fp16", "invalid choice"), ("--anchor", "orig", "invalid choice"),
    ("--inner-momentum", "-0.1", "must be >= 0"), ("--inner-momentum", "nan", "not a finite number"),
])
def test_bad_protocol_options_are_one_line(world, tmp_path, capsys, flag, value, needle):
    folder, checkpoint = world
    assert main(_args(folder, checkpoint, tmp_path / "out", "--method", "fare", f"{flag}={value}")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err, err
    assert not (tmp_path / "out").exists()
