"""Bad input is a ValueError naming the argument and what is allowed, before any work."""
import pytest
import torch

from attacks import NonFiniteLossError, apgd, cw, pgd


def _cases(x, y):
    nan_x = x.clone()
    nan_x[0, 0, 0, 0] = float("nan")
    return [
        (dict(eps=0.0), "eps=0.0 is out of range"),
        (dict(eps=-1 / 255), "eps=.* is out of range"),
        (dict(eps=4.0), r"eps=4.0 is out of range; linf needs 0 < eps <= 1"),
        (dict(x=x * 255), r"outside \[0, 1\]"),
        (dict(x=nan_x), "NaN or inf"),
        (dict(y=y[:-1]), "y must be a 1-D tensor of 64 class indices"),
        (dict(y=y + 10), r"allowed: 0\.\.9"),
        (dict(y=y.float()), "integer class indices"),
        (dict(norm="l1"), "norm='l1' is not supported; use one of linf, l2"),
        (dict(loss="xent"), "loss='xent' is not supported; use one of ce, dlr"),
        (dict(steps=0), "steps=0 must be an integer >= 1"),
        (dict(loss="ce-targeted", target=y), "target equals the true label for sample 0"),
        (dict(loss="ce", target=(y + 1) % 10), "target= needs a targeted loss"),
    ]


@pytest.mark.parametrize("case", range(13))
def test_apgd_rejects_bad_input(digits, case):
    model, x, y = digits
    kwargs, message = _cases(x, y)[case]
    args = dict(x=x, y=y, eps=4 / 255)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        apgd(model, **args)


def test_pgd_and_cw_reject_bad_input(digits):
    model, x, y = digits
    with pytest.raises(ValueError, match="target equals the true label"):
        pgd(model, x, y, target=y)
    with pytest.raises(ValueError, match="step_size"):
        pgd(model, x, y, step_size=-1.0)
    with pytest.raises(ValueError, match="needs eps"):
        cw(model, x, (y + 1) % 10, eps=None, norm="linf")
    with pytest.raises(ValueError, match="kappa"):
        cw(model, x, (y + 1) % 10, kappa=-1.0)


def test_targeted_dlr_needs_four_classes():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3))
    x, y = torch.rand(4, 3, 4, 4), torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match="loss='dlr-targeted' needs a model with at least 4 classes; this one has 3"):
        apgd(model, x, y, loss="dlr-targeted")
    with pytest.raises(ValueError, match="n_targets=5 must be in 1..2"):
        apgd(model, x, y, loss="ce-targeted", n_targets=5)


def test_nan_logits_are_a_clear_error():
    class Broken(torch.nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 10), float("nan"))

    with pytest.raises(NonFiniteLossError, match="NaN/inf logits"):
        apgd(Broken(), torch.rand(2, 3, 4, 4), torch.tensor([0, 1]))


def test_wrong_model_output_shape_is_named():
    model = torch.nn.Flatten()  # returns [N, features], fine; make it 1-D instead
    with pytest.raises(ValueError, match="logits \\[N, classes\\]"):
        apgd(lambda x: model(x).sum(dim=1), torch.rand(2, 3, 4, 4), torch.tensor([0, 1]))
