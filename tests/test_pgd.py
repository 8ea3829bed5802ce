"""PGD against torchattacks.PGD / PGDL2 on the same models and data."""
import pytest
import torch
import torchattacks

from attacks import pgd
from tests.conftest import robust_acc

CASES = [("digits", "linf", 0.1), ("vit", "linf", 1 / 255), ("digits", "l2", 1.5), ("vit", "l2", 0.1)]


def _torchattacks(model, norm, eps, alpha, steps, random_start):
    cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
    return cls(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start)


@pytest.mark.parametrize("victim,norm,eps", CASES)
def test_pgd_without_random_start_equals_torchattacks(request, victim, norm, eps):
    model, x, y = request.getfixturevalue(victim)
    alpha = eps / 4
    ours = pgd(model, x, y, eps=eps, norm=norm, steps=10, step_size=alpha, random_start=False,
               stop_on_success=False)
    theirs = _torchattacks(model, norm, eps, alpha, 10, False)(x, y)
    comparable = _gradient_not_vanishing(model, x, y) if norm == "l2" else torch.ones(len(y), dtype=torch.bool)
    assert comparable.float().mean() > 0.8
    # Same algorithm: only float rounding may differ. torchattacks differentiates the batch-mean loss,
    # we the per-sample sum, so a gradient component within rounding of 0 can take the other sign
    # under L-inf and move its pixel by a step or two: allowed on at most 1 in 10^4 pixels.
    differs = (ours - theirs)[comparable].abs() > 1e-5
    assert float(differs.float().mean()) <= 1e-4, int(differs.sum())
    assert robust_acc(model, ours, y) == robust_acc(model, theirs, y)


def _gradient_not_vanishing(model, x, y):
    """Samples where torchattacks' 1e-10 added to the batch-mean gradient norm is negligible.

    For a saturated softmax the mean-CE gradient norm is ~1e-7, and torchattacks' L2 step
    g / (||g|| + 1e-10) then differs from the exact unit step by ~0.1%.
    """
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x), y), x)
    return grad.flatten(1).norm(dim=1) > 1e-5


@pytest.mark.parametrize("victim,norm,eps", CASES)
def test_pgd_with_random_start_matches_torchattacks_robust_accuracy(request, victim, norm, eps):
    model, x, y = request.getfixturevalue(victim)
    alpha = eps / 4
    ours = robust_acc(model, pgd(model, x, y, eps=eps, norm=norm, steps=10, step_size=alpha, seed=0), y)
    torch.manual_seed(0)
    theirs = robust_acc(model, _torchattacks(model, norm, eps, alpha, 10, True)(x, y), y)
    # Different random draws; stopping at the first success can only help us.
    assert ours <= theirs + 2 / len(y), (ours, theirs)


def test_pgd_targeted_reaches_the_target(digits):
    model, x, y = digits
    target = (y + 3) % 10
    x_adv = pgd(model, x, y, eps=0.3, steps=40, target=target)
    with torch.no_grad():
        assert float((model(x_adv).argmax(dim=1) == target).float().mean()) > 0.9


def test_stop_on_success_never_reports_fewer_breaks(digits):
    model, x, y = digits
    final = pgd(model, x, y, eps=0.1, steps=10, stop_on_success=False)
    first = pgd(model, x, y, eps=0.1, steps=10, stop_on_success=True)
    assert robust_acc(model, first, y) <= robust_acc(model, final, y)
