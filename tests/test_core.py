"""Determinism, the model's state, and the objective interface under the cores."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attacks import Evaluation, apgd, cw, pgd, run_apgd, run_pgd, worst_case


@pytest.mark.parametrize("attack", [
    lambda m, x, y, s: apgd(m, x, y, eps=1 / 255, steps=20, seed=s),
    lambda m, x, y, s: apgd(m, x, y, eps=1 / 255, steps=10, loss="dlr-targeted", n_targets=3, seed=s),
    lambda m, x, y, s: pgd(m, x, y, eps=1 / 255, steps=10, seed=s),
    lambda m, x, y, s: cw(m, x, (y + 1) % 10, eps=1 / 255, steps=10, seed=s),
    lambda m, x, y, s: worst_case(m, x, y, eps=1 / 255, steps=10, seed=s).x_adv,
])
def test_same_seed_same_bits(vit, attack):
    model, x, y = vit
    first, second = attack(model, x, y, 0), attack(model, x, y, 0)
    assert torch.equal(first, second)
    assert not torch.equal(first, attack(model, x, y, 1))


class DropoutNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 32), nn.BatchNorm1d(32), nn.ReLU(),
                                  nn.Dropout(0.5), nn.Linear(32, 10))

    def forward(self, x):
        return self.body(x)


def test_model_state_is_restored_and_no_parameter_gradients():
    torch.manual_seed(0)
    model = DropoutNet().train()
    model.body[2].eval()  # a frozen BatchNorm inside a training model must stay as it was
    x = torch.rand(16, 3, 8, 8)
    y = torch.randint(0, 10, (16,))
    stats = model.body[2].running_mean.clone()
    first = apgd(model, x, y, eps=8 / 255, steps=10)
    second = apgd(model, x, y, eps=8 / 255, steps=10)
    assert torch.equal(first, second)  # dropout was off during the attack
    assert model.training and model.body[4].training and not model.body[2].training
    assert torch.equal(model.body[2].running_mean, stats)
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


class FeatureDrift:
    """A FARE-style objective: squared distance of features from the clean features."""

    def __init__(self, features: nn.Module, x: torch.Tensor) -> None:
        self.features = features
        with torch.no_grad():
            self.clean = features(x)

    def __call__(self, x, idx):
        loss = (self.features(x) - self.clean[idx]).pow(2).sum(dim=1)
        return Evaluation(loss=loss, success=torch.zeros_like(loss, dtype=torch.bool))


@pytest.mark.parametrize("core", ["apgd", "pgd"])
def test_objective_interface_drives_any_loss(vit, core):
    model, x, _ = vit
    features = model.visual
    objective = FeatureDrift(features, x)
    if core == "apgd":
        result = run_apgd(objective, x, eps=2 / 255, steps=20, restarts=2)
    else:
        result = run_pgd(objective, x, eps=2 / 255, steps=10, stop_on_success=False)
    with torch.no_grad():
        drift = (features(result.x_adv) - objective.clean).pow(2).sum(dim=1)
    assert not bool(result.success.any())
    assert bool((drift > 0).all())
    assert torch.allclose(drift, result.loss, rtol=1e-4, atol=1e-6)  # the loss reported is the returned point's
    assert float((result.x_adv - x).abs().max()) <= 2 / 255 + 1e-6


def test_apgd_beats_pgd_on_a_feature_objective(vit):
    """APGD's adaptive steps should reach a higher loss than fixed-step PGD at equal budget."""
    model, x, _ = vit
    objective = FeatureDrift(model.visual, x)
    a = run_apgd(objective, x, eps=2 / 255, steps=30, random_start=False, initial_step=1.0)
    p = run_pgd(objective, x, eps=2 / 255, steps=30, random_start=False, stop_on_success=False)
    assert float(a.loss.mean()) >= float(p.loss.mean())


def test_low_precision_inputs_round_trip(vit):
    model, x, y = vit
    half = model.to(torch.bfloat16)
    try:
        xb = x.to(torch.bfloat16)
        x_adv = apgd(half, xb, y, eps=4 / 255, steps=5)
        assert x_adv.dtype == torch.bfloat16 and x_adv.shape == xb.shape
    finally:
        model.float()


def test_no_parameter_needs_a_gradient_during_the_attack(vit):
    """Weights are frozen inside the attack, so autograd keeps nothing for weight gradients."""
    model, x, y = vit
    seen = []

    def record(module, inputs):
        seen.append(any(p.requires_grad for p in module.parameters()))

    handle = model.visual.register_forward_pre_hook(record)
    try:
        apgd(model, x, y, eps=1 / 255, steps=3)
    finally:
        handle.remove()
    assert seen and not any(seen)
    assert all(p.requires_grad for p in model.parameters())


def test_cross_entropy_reference_value(digits):
    """The loss the core maximises is the per-sample CE of the model's logits."""
    from attacks import ClassifierObjective

    model, x, y = digits
    ev = ClassifierObjective(model, y, "ce")(x, torch.arange(len(y)))
    assert torch.allclose(ev.loss, F.cross_entropy(model(x), y, reduction="none"))


def test_sample_seeds_make_random_starts_independent_of_the_batch():
    from attacks.randomness import SampleSeeds, make_generator
    from attacks.threat import random_start

    x = torch.rand(6, 3, 4, 4)
    seeds = SampleSeeds(range(100, 106))
    whole = random_start(x, 0.1, "linf", make_generator(seeds, x.device), uniform_ball=True)
    rows = torch.tensor([4, 1])
    part = random_start(x[rows], 0.1, "linf", make_generator(seeds.rows(rows), x.device), uniform_ball=True)
    assert torch.equal(whole[rows], part)
    assert not torch.equal(whole[0], whole[1])
    l2 = random_start(x, 0.5, "l2", make_generator(seeds, x.device), uniform_ball=True)
    assert torch.equal(l2[rows], random_start(x[rows], 0.5, "l2", make_generator(seeds.rows(rows), x.device),
                                              uniform_ball=True))
