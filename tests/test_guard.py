"""The validity guard catches a broken attack instead of letting it report a number."""
import pytest
import torch

from attacks import InvalidAdversarialError, apgd, check_valid, pgd, threat


def _no_ball_projection(x_adv, x, eps, norm):
    return x_adv.clamp(0.0, 1.0)  # forgets the eps-ball: the bug the guard exists for


def _no_box_projection(x_adv, x, eps, norm):
    return torch.minimum(torch.maximum(x_adv, x - eps), x + eps)  # forgets [0, 1]


@pytest.mark.parametrize("attack", [apgd, pgd])
@pytest.mark.parametrize("broken", [_no_ball_projection, _no_box_projection])
def test_a_broken_step_is_caught(digits, monkeypatch, attack, broken):
    model, x, y = digits
    monkeypatch.setattr(threat, "project", broken)
    with pytest.raises(InvalidAdversarialError):
        attack(model, x, y, eps=0.05, steps=5)


def test_guard_rejects_each_violation():
    x = torch.full((2, 3, 4, 4), 0.5)
    check_valid(x + 0.01, x, 0.01, "linf", "t")  # on the boundary: fine
    with pytest.raises(InvalidAdversarialError, match="outside the linf ball"):
        check_valid(x + 0.0101, x, 0.01, "linf", "t")
    with pytest.raises(InvalidAdversarialError, match="outside the l2 ball"):
        check_valid(x + 0.01, x, 0.01, "l2", "t")
    with pytest.raises(InvalidAdversarialError, match="non-finite"):
        check_valid(torch.where(x > 0, torch.nan, x), x, 0.01, "linf", "t")
    with pytest.raises(InvalidAdversarialError, match=r"\[0,1\]"):
        check_valid(torch.ones_like(x) * 1.001, torch.ones_like(x), 0.01, "linf", "t")
    with pytest.raises(InvalidAdversarialError, match="shape"):
        check_valid(x[:1], x, 0.01, "linf", "t")
