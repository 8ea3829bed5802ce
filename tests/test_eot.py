"""Expectation over transformation (eot_iter) against the references, on a randomised model.

The victim is the digits CNN behind Gaussian input noise drawn inside forward (a randomised
defence in the style of randomised smoothing): one gradient is a poor guide there, the mean
over many draws a good one. The references are pyautoattack's APGDAttack(eot_iter=k) and
torchattacks' EOTPGD.
"""
import json

import pytest
import torch
from pyautoattack.autopgd_base import APGDAttack
from torch import Tensor, nn
from torchattacks import EOTPGD

from attacks import apgd, pgd, run_apgd, run_pgd
from attacks.core import loss_and_grad
from attacks.objectives import ClassifierObjective, Evaluation
from attacks.threat import norm_of
from bench.cli.main import main
from tests import bench_fixtures as fx
from tests import victims

SIGMA = 0.3  # noise std in pixel units: the clean accuracy stays ~88%, single-draw gradients are noisy
AA_NORM = {"linf": "Linf", "l2": "L2"}


class NoisyDigits(nn.Module):
    """The digits CNN on x + SIGMA * N(0, 1) noise, drawn anew at every forward pass.

    Noise comes from `generator` when given (so two attacks can be fed the very same draws),
    else from torch's global generator, as a randomised defence usually draws it. It counts
    the rows of every forward pass, and of every backward pass through the input (a hook on
    this call's noisy input fires once per gradient taken through it).
    """

    def __init__(self, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.net = victims.digits_cnn()
        self.generator = generator
        self.forward_rows = 0
        self.backward_rows = 0

    def forward(self, x: Tensor) -> Tensor:
        noisy = x + SIGMA * torch.randn(x.shape, generator=self.generator, dtype=x.dtype, device=x.device)
        self.forward_rows += x.shape[0]
        if noisy.requires_grad:
            noisy.register_hook(self._count_backward)
        return self.net(noisy)

    def _count_backward(self, grad: Tensor) -> None:
        self.backward_rows += grad.shape[0]


def _digits(n: int) -> tuple[Tensor, Tensor]:
    _, _, x, y = victims.digits_data()
    return x[:n].clone(), y[:n].clone()


def _expected_accuracy(model: nn.Module, x: Tensor, y: Tensor, draws: int = 32) -> float:
    """Accuracy averaged over `draws` fixed draws of the model's noise: the quantity a
    randomised defence is judged by, the same draws for every attack compared."""
    torch.manual_seed(1234)
    with torch.no_grad():
        return sum(float((model(x).argmax(dim=1) == y).float().mean()) for _ in range(draws)) / draws


@pytest.mark.parametrize("loss", ["ce", "dlr"])
@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.5)])
def test_apgd_with_eot_is_autoattacks_apgd_draw_for_draw(norm, eps, loss):
    """Fed the same noise draws, our APGD(eot_iter=3) and AutoAttack's take the same path.

    Both make one clean pass, then start from the same point (our seeded generator and
    AutoAttack's torch.manual_seed(0) give the same numbers) and, with eot_iter > 1, keep
    every sample for all steps. So they consume the model's noise generator identically,
    break the same samples at the same points (L2: up to the rounding of the projection
    formulas) and make exactly the same number of forward and backward passes, row for row.
    """
    x, y = _digits(32)
    steps, k = 10, 3
    model = NoisyDigits(torch.Generator().manual_seed(7))
    ours = run_apgd(ClassifierObjective(model, y, loss), x, eps=eps, norm=norm, steps=steps, seed=0, eot_iter=k)
    our_calls = (model.forward_rows, model.backward_rows)

    model.generator.manual_seed(7)
    model.forward_rows = model.backward_rows = 0
    theirs = APGDAttack(model, n_iter=steps, norm=AA_NORM[norm], eps=eps, seed=0, loss=loss, eot_iter=k,
                        device="cpu").perturb(x.clone(), y.clone()).detach()

    # AutoAttack returns x where it did not break the sample; clean mistakes are ours' successes at x.
    their_broken = (theirs != x).flatten(1).any(dim=1)
    our_broken = ours.success & (ours.x_adv != x).flatten(1).any(dim=1)
    assert torch.equal(our_broken, their_broken)
    assert 0 < int(our_broken.sum()) < len(y), "the setting must break some samples and leave some"
    assert float((ours.x_adv[our_broken] - theirs[our_broken]).abs().max()) <= 1e-6
    attacked = int((~ours.success).sum() + our_broken.sum())  # clean-correct rows
    assert our_calls == (model.forward_rows, model.backward_rows) == (32 + (steps + 1) * k * attacked,
                                                                      (steps + 1) * k * attacked)
    assert float(norm_of(ours.x_adv - x, norm).max()) <= eps + 1e-6


def test_apgd_with_eot_at_least_as_strong_as_autoattack_and_stronger_than_without():
    """Noise from torch's global generator (the realistic case): the draws differ between the
    two implementations, so the comparison is statistical, on the expected accuracy of the
    returned points. AutoAttack returns x for a sample it did not break, we its highest-loss
    point, so ours may only be lower; one sample of slack covers the different draws."""
    x, y = _digits(48)
    model = NoisyDigits()
    eps, steps, k = 0.1, 20, 8
    torch.manual_seed(100)
    ours_eot = _expected_accuracy(model, apgd(model, x, y, eps=eps, steps=steps, seed=0, eot_iter=k), y)
    torch.manual_seed(100)
    ours_plain = _expected_accuracy(model, apgd(model, x, y, eps=eps, steps=steps, seed=0), y)
    torch.manual_seed(100)
    theirs = APGDAttack(model, n_iter=steps, eps=eps, seed=0, eot_iter=k, device="cpu").perturb(x.clone(), y.clone())
    theirs_eot = _expected_accuracy(model, theirs, y)
    assert ours_eot <= theirs_eot + 1 / len(y), (ours_eot, theirs_eot)
    assert 0 < theirs_eot < _expected_accuracy(model, x, y), "the setting must leave some robustness and break some"
    # What EOT is for: single-draw gradients leave clearly more of the defence standing.
    assert ours_eot < ours_plain - 0.03, (ours_eot, ours_plain)


def test_gradient_calls_per_sample_with_and_without_eot():
    """eot_iter=k costs k backward passes per sample and iteration. With eot_iter=1 a broken
    sample leaves at once (a deterministic model's success is final), so it costs fewer
    passes than AutoAttack, which keeps every sample for every step; with eot_iter > 1 it
    stays, and the count is AutoAttack's exactly (see the draw-for-draw test)."""
    x, y = _digits(32)
    steps, k = 10, 4
    model = NoisyDigits(torch.Generator().manual_seed(3))
    run = run_apgd(ClassifierObjective(model, y, "ce"), x, eps=0.1, steps=steps, seed=0)
    attacked = int((run.x_adv != x).flatten(1).any(dim=1).sum())
    assert bool(run.success.any())
    assert model.backward_rows < (steps + 1) * attacked  # broken samples left early

    model.backward_rows = 0
    run = run_apgd(ClassifierObjective(model, y, "ce"), x, eps=0.1, steps=steps, seed=0, eot_iter=k)
    attacked = int((run.x_adv != x).flatten(1).any(dim=1).sum())
    assert bool(run.success.any())
    assert model.backward_rows == (steps + 1) * k * attacked


def test_eot_iter_1_is_the_single_draw_gradient_bit_for_bit(digits):
    """eot_iter=1 changes nothing: the gradient is autograd's on one pass, and the attacks give
    the results they give without the option. On a deterministic model averaging k=2 equal
    draws is exact too (g + g = 2g), at twice the passes."""
    model, x, y = digits
    objective = ClassifierObjective(model, y, "ce")
    idx = torch.arange(len(y))
    x_req = x.clone().requires_grad_(True)
    (direct,) = torch.autograd.grad(objective(x_req, idx).loss.sum(), x_req)
    ev1, g1 = loss_and_grad(objective, x, idx, eot_iter=1)
    ev2, g2 = loss_and_grad(objective, x, idx, eot_iter=2)
    assert torch.equal(g1, direct) and torch.equal(g2, g1) and torch.equal(ev2.loss, ev1.loss)

    for loss in ("ce", "dlr-targeted"):
        assert torch.equal(apgd(model, x, y, eps=0.05, steps=10, loss=loss, eot_iter=1),
                           apgd(model, x, y, eps=0.05, steps=10, loss=loss))
    assert torch.equal(pgd(model, x, y, eps=0.05, steps=5, eot_iter=1), pgd(model, x, y, eps=0.05, steps=5))


class CountingObjective:
    """Any objective (here a classifier's; a VLM's caption loss goes the same way): counts calls."""

    def __init__(self, inner: ClassifierObjective) -> None:
        self.inner, self.calls = inner, 0

    def __call__(self, x: Tensor, idx: Tensor) -> Evaluation:
        self.calls += 1
        return self.inner(x, idx)


@pytest.mark.parametrize("core", [run_apgd, run_pgd])
def test_eot_works_on_any_objective(digits, core):
    """EOT lives in loss_and_grad, under the Objective seam every task kind attacks through
    (zero-shot logits, retrieval, the VLM's LM loss): k objective passes per gradient."""
    model, x, y = digits
    objective = CountingObjective(ClassifierObjective(model, y, "ce"))
    steps, k = 4, 3
    core(objective, x, eps=0.01, steps=steps, seed=0, stop_on_success=False, eot_iter=k)
    clean_or_final_pass = 1  # APGD's clean check / PGD's scoring of the last iterate
    assert objective.calls == clean_or_final_pass + (steps + (core is run_apgd)) * k


def test_pgd_with_eot_equals_torchattacks_eotpgd():
    """Same draws, no random start: EOTPGD sums the gradients of the batch-mean CE, we average
    those of the per-sample CE; the sign step is the same, so the iterates are too."""
    x, y = _digits(32)
    eps, steps, k = 0.1, 5, 3
    model = NoisyDigits(torch.Generator().manual_seed(11))
    ours = run_pgd(ClassifierObjective(model, y, "ce"), x, eps=eps, steps=steps, step_size=eps / 4,
                   random_start=False, stop_on_success=False, eot_iter=k)
    our_backward = model.backward_rows
    model.generator.manual_seed(11)
    model.backward_rows = 0
    theirs = EOTPGD(model, eps=eps, alpha=eps / 4, steps=steps, eot_iter=k, random_start=False)(x, y)
    assert float((ours.x_adv - theirs).abs().max()) < 1e-6
    assert our_backward == model.backward_rows == steps * k * len(y)


def test_pgd_with_eot_keeps_every_sample_and_returns_its_last_success():
    x, y = _digits(32)
    model = NoisyDigits(torch.Generator().manual_seed(5))
    steps, k = 6, 2
    run = run_pgd(ClassifierObjective(model, y, "ce"), x, eps=0.1, steps=steps, seed=0, eot_iter=k)
    assert model.backward_rows == steps * k * len(y)  # nobody dropped at a lucky draw
    assert bool(run.success.any()) and float(norm_of(run.x_adv - x, "linf").max()) <= 0.1 + 1e-6


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_eot_iter_below_1_is_refused_in_one_line(digits, bad):
    model, x, y = digits
    for attack in (lambda: apgd(model, x, y, eot_iter=bad), lambda: pgd(model, x, y, eot_iter=bad),
                   lambda: run_apgd(ClassifierObjective(model, y, "ce"), x, eps=0.1, eot_iter=bad)):
        with pytest.raises(ValueError, match=r"^eot_iter=.* must be an integer >= 1") as err:
            attack()
        assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return fx.folder_and_checkpoint(tmp_path_factory.mktemp("eot"), per_class=2)


def _run(world, out, *extra):
    data, model = world
    return main(["run", "--encoder", str(model), "--task", f"folder:{data}", "--out", str(out), "--steps", "2",
                 "--n-samples", "4", "--eps", "4/255", *extra])


def test_eot_iter_reaches_the_run_identity(world, tmp_path, capsys):
    out = tmp_path / "results"
    assert _run(world, out, "--attack", "apgd", "--attack-args", json.dumps({"eot_iter": 3})) == 0
    assert _run(world, out, "--attack", "apgd") == 0
    configs = [json.loads(p.read_text()) for p in sorted(out.rglob("config.json"))]
    assert sorted(c["attack_args"].get("eot_iter", 1) for c in configs) == [1, 3]  # two runs, two folders

    capsys.readouterr()
    assert _run(world, tmp_path / "bad", "--attack", "pgd", "--attack-args", '{"eot_iter": 0}') == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "eot_iter" in err, err


def test_aa_rand_is_autoattacks_rand_version_and_records_its_eot_iter(tmp_path):
    """AutoAttack's version='rand': APGD-CE and APGD-DLR with eot_iter 20 and one restart; the
    entry's defaults land in the run's attack_args (so in its identity), and --attack-args wins."""
    from attacks.table import TABLE, check_arguments
    from bench.cli.main import main

    entry = TABLE["aa-rand"]
    assert [(m.name, m.loss) for m in entry.members] == [("apgd-ce", "ce"), ("apgd-dlr", "dlr")]
    assert check_arguments(entry, {}) == {"eot_iter": 20, "restarts": 1}
    assert check_arguments(entry, {"eot_iter": 5}) == {"eot_iter": 5, "restarts": 1}
    out = tmp_path / "runs"
    assert main(["run", "--encoder", "clip", "--task", "tiny-shape", "--attack", "aa-rand", "--attack-args",
                 '{"eot_iter": 2}', "--eps", "4/255", "--n-samples", "2", "--steps", "2", "--out", str(out)]) == 0
    (run,) = out.iterdir()
    config = json.loads((run / "config.json").read_text())
    assert config["attack_args"] == {"eot_iter": 2, "restarts": 1}
    assert config["attack_members"] == ["apgd-ce", "apgd-dlr"]
