"""APGD against pyautoattack's APGDAttack / APGDAttack_targeted on the same models and data."""
import pytest
import torch
from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

from attacks import apgd
from attacks.threat import norm_of
from tests.conftest import robust_acc

# eps per (victim, norm) where some samples survive and some break, so the comparison bites.
SETTINGS = {
    ("digits", "linf"): 0.1,
    ("vit", "linf"): 1 / 255,
    ("digits", "l2"): 1.5,
    ("vit", "l2"): 0.1,
}
STEPS = 50


def _victim(request, name):
    return request.getfixturevalue(name)


def _reference(model, x, y, eps, norm, loss):
    aa_norm = {"linf": "Linf", "l2": "L2"}[norm]
    if loss == "dlr-targeted":
        ref = APGDAttack_targeted(model, n_iter=STEPS, norm=aa_norm, eps=eps, seed=0, n_target_classes=9, device="cpu")
    else:
        ref = APGDAttack(model, n_iter=STEPS, norm=aa_norm, eps=eps, seed=0, loss=loss, device="cpu")
    return ref.perturb(x.clone(), y.clone())


@pytest.mark.parametrize("loss", ["ce", "dlr", "dlr-targeted"])
# the l2 cases take about ten seconds each: long (CI runs them)
@pytest.mark.parametrize("victim,norm", [("digits", "linf"), ("vit", "linf"),
                                         pytest.param("digits", "l2", marks=pytest.mark.long),
                                         pytest.param("vit", "l2", marks=pytest.mark.long)])
def test_apgd_at_least_as_strong_as_autoattack(request, victim, norm, loss):
    model, x, y = _victim(request, victim)
    eps = SETTINGS[(victim, norm)]
    ours = apgd(model, x, y, eps=eps, norm=norm, steps=STEPS, loss=loss, seed=0)
    theirs = _reference(model, x, y, eps, norm, loss)
    ours_acc, theirs_acc = robust_acc(model, ours, y), robust_acc(model, theirs, y)
    one_sample = 1 / len(y)
    assert ours_acc <= theirs_acc + one_sample + 1e-9, (ours_acc, theirs_acc)
    assert 0 < theirs_acc < robust_acc(model, x, y), "setting must leave some samples robust and break some"
    assert float(norm_of(ours - x, norm).max()) <= eps + 1e-6
    assert float(ours.min()) >= 0 and float(ours.max()) <= 1
    assert ours.shape == x.shape and ours.dtype == x.dtype


def test_apgd_explicit_targets_reach_the_target(digits):
    model, x, y = digits
    target = (y + 1) % 10
    x_adv = apgd(model, x, y, eps=0.3, loss="ce-targeted", target=target, steps=50)
    with torch.no_grad():
        hit = model(x_adv).argmax(dim=1) == target
    assert float(hit.float().mean()) > 0.9


def test_restarts_only_improve(vit):
    model, x, y = vit
    one = robust_acc(model, apgd(model, x, y, eps=1 / 255, steps=20, restarts=1), y)
    three = robust_acc(model, apgd(model, x, y, eps=1 / 255, steps=20, restarts=3), y)
    assert three <= one


def test_unbroken_samples_return_their_highest_loss_point(digits):
    """A still-robust sample comes back moved (its best-loss point), not as the clean image."""
    model, x, y = digits
    x_adv = apgd(model, x, y, eps=0.02, steps=20)
    with torch.no_grad():
        robust = model(x_adv).argmax(dim=1) == y
        ce = torch.nn.functional.cross_entropy
        assert bool(robust.any())
        adv_loss = ce(model(x_adv[robust]), y[robust], reduction="none")
        clean_loss = ce(model(x[robust]), y[robust], reduction="none")
    assert bool((adv_loss > clean_loss).all())
