"""Targeted CW against torchattacks.CW, and the negative-logit case it gets wrong."""
import torch
import torchattacks
from torch import nn

from attacks import cw
from attacks.threat import norm_of


class NegativeLogits(nn.Module):
    """The same classifier with every logit shifted below zero (softmax is unchanged)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x) - 1000.0


def _hit_rate(model, x_adv, target) -> float:
    with torch.no_grad():
        return float((model(x_adv).argmax(dim=1) == target).float().mean())


def _torchattacks_cw(model, x, target, steps):
    atk = torchattacks.CW(model, c=1.0, kappa=0.0, steps=steps, lr=0.01)
    atk.set_mode_targeted_by_label(quiet=True)
    return atk(x, target)


def test_cw_l2_success_at_least_torchattacks(digits):
    model, x, y = digits
    x, y = x[:32], y[:32]
    target = (y + 1) % 10
    ours = cw(model, x, target, norm="l2", eps=None, steps=100, binary_search_steps=4)
    theirs = _torchattacks_cw(model, x, target, 100)
    ours_rate, theirs_rate = _hit_rate(model, ours, target), _hit_rate(model, theirs, target)
    assert ours_rate >= theirs_rate, (ours_rate, theirs_rate)
    assert ours_rate > 0.9
    # Minimal-norm attack: where both succeed, the binary search over c finds no larger perturbations.
    with torch.no_grad():
        both = (model(ours).argmax(dim=1) == target) & (model(theirs).argmax(dim=1) == target)
    assert bool(both.any())
    assert float(norm_of(ours - x, "l2")[both].mean()) <= 1.01 * float(norm_of(theirs - x, "l2")[both].mean())


def test_cw_l2_is_right_with_negative_logits_where_masking_fails(digits):
    model, x, y = digits
    shifted = NegativeLogits(model).eval()
    x, y = x[:16], y[:16]
    with torch.no_grad():
        assert float(shifted(x).max()) < 0
    target = (y + 1) % 10
    ours = _hit_rate(shifted, cw(shifted, x, target, norm="l2", eps=None, steps=100, binary_search_steps=4), target)
    theirs = _hit_rate(shifted, _torchattacks_cw(shifted, x, target, 100), target)
    assert ours > 0.9
    assert theirs < 0.2  # (1 - onehot) * z reads every negative logit as 0: no gradient to the target


def test_cw_l2_respects_an_eps_budget(digits):
    model, x, y = digits
    target = (y[:16] + 1) % 10
    x_adv = cw(model, x[:16], target, norm="l2", eps=1.0, steps=50, binary_search_steps=3)
    assert float(norm_of(x_adv - x[:16], "l2").max()) <= 1.0 + 1e-6


def test_cw_linf_targeted_hits_and_stays_in_ball(digits):
    model, x, y = digits
    target = (y + 2) % 10
    x_adv = cw(model, x, target, eps=0.3, norm="linf", steps=50)
    assert _hit_rate(model, x_adv, target) > 0.9
    assert float((x_adv - x).abs().max()) <= 0.3 + 1e-6


def _target_margin(model, x_adv, target):
    with torch.no_grad():
        z = model(x_adv)
    z_t = z.gather(1, target[:, None])[:, 0]
    return z_t - z.scatter(1, target[:, None], float("-inf")).amax(dim=1)


def test_cw_kappa_buys_a_margin(digits):
    model, x, y = digits
    target = (y + 2) % 10
    plain = _target_margin(model, cw(model, x, target, eps=0.3, norm="linf", steps=50), target)
    confident = _target_margin(model, cw(model, x, target, eps=0.3, norm="linf", steps=50, kappa=5.0), target)
    assert float((confident >= 5.0 - 1e-4).float().mean()) > 0.9
    assert float(confident.median()) > float(plain.median())
