"""The worst-case ensemble: never weaker than its members, honest bookkeeping."""
import pytest
import torch

from attacks import apgd, worst_case
from attacks.ensemble import CLEAN
from tests.conftest import robust_acc

MEMBERS = {"apgd-ce": "ce", "apgd-t": "dlr-targeted", "apgd-dlr": "dlr"}


@pytest.mark.parametrize("victim,eps", [("digits", 0.1), pytest.param("vit", 1 / 255, marks=pytest.mark.long)])
def test_worst_case_is_at_most_every_member(request, victim, eps):
    model, x, y = request.getfixturevalue(victim)
    result = worst_case(model, x, y, attacks=["apgd-ce", "apgd-t", "apgd-dlr"], eps=eps, steps=30)
    alone = [robust_acc(model, apgd(model, x, y, eps=eps, steps=30, loss=loss), y) for loss in MEMBERS.values()]
    assert result.robust_accuracy <= min(alone)
    assert 0 < result.robust_accuracy < 1


def test_worst_case_bookkeeping(digits):
    model, x, y = digits
    result = worst_case(model, x, y, eps=0.1, steps=30)
    with torch.no_grad():
        pred_adv = model(result.x_adv).argmax(dim=1)
        clean_pred = model(x).argmax(dim=1)
    assert torch.equal(result.clean_correct, clean_pred == y)
    # robust exactly where the returned point is still classified correctly
    assert torch.equal(result.robust, pred_adv == y)
    for i, w in enumerate(result.winner):
        if result.robust[i]:
            assert w is None and torch.equal(result.x_adv[i], x[i])  # x where no attack succeeded
        elif not result.clean_correct[i]:
            assert w == CLEAN and torch.equal(result.x_adv[i], x[i])
        else:
            assert w in ("apgd-ce", "apgd-t")
    assert {"apgd-ce"} <= set(result.winner)


def test_later_attacks_only_see_robust_samples(digits, monkeypatch):
    """apgd-t must run on the samples apgd-ce left robust, nothing more."""
    from attacks import ensemble as wc

    seen: dict[str, int] = {}
    original = dict(wc.ENSEMBLE)

    def spy(name):
        def run(m, x, y, settings):
            seen[name] = x.shape[0]
            return original[name](m, x, y, settings)
        return run

    monkeypatch.setattr(wc, "ENSEMBLE", {k: spy(k) for k in original})
    model, x, y = digits
    result = worst_case(model, x, y, eps=0.1, steps=20)
    after_ce = int(result.clean_correct.sum()) - result.winner.count("apgd-ce")
    assert seen["apgd-ce"] == int(result.clean_correct.sum())
    assert seen["apgd-t"] == after_ce


def test_unknown_member_is_named(digits):
    model, x, y = digits
    with pytest.raises(ValueError, match="unknown attack 'apgd-xx'.*apgd-ce"):
        worst_case(model, x, y, attacks=["apgd-ce", "apgd-xx"])
