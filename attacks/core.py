"""What every attack core shares: the model's attack mode, loss+gradient, results."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attacks.objectives import Evaluation, Model, Objective


class NonFiniteLossError(ValueError):
    """The model (or objective) produced NaN/inf where the attack needs a number."""


@dataclass
class AttackResult:
    """Per sample: the point returned, whether the objective's goal was reached, best loss.

    x_adv holds the successful point where success is True, otherwise the highest-loss
    point found (x itself for samples that were not attacked).
    """

    x_adv: Tensor
    success: Tensor
    loss: Tensor


@contextmanager
def attack_mode(model: Model) -> Iterator[None]:
    """Eval mode and no parameter gradients for the attack; the caller's state is restored.

    Parameter gradients are never needed by an attack; switching them off saves the
    backward pass the weight gradients and the activations kept for them.
    """
    if not isinstance(model, nn.Module):
        yield
        return
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in grads:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
        for p, flag in grads:
            p.requires_grad_(flag)


def _check_finite(ev: Evaluation) -> None:
    bad = ~torch.isfinite(ev.loss.detach())
    if bool(bad.any()):
        raise NonFiniteLossError(
            f"the attack loss is NaN/inf for {int(bad.sum())} of {bad.numel()} samples; "
            "check that the model returns finite outputs on images in [0, 1]"
        )


def evaluate(objective: Objective, x: Tensor, idx: Tensor) -> Evaluation:
    """The objective at x, without building a graph."""
    with torch.no_grad():
        ev = objective(x, idx)
    _check_finite(ev)
    return Evaluation(ev.loss.detach(), ev.success.detach())


def loss_and_grad(objective: Objective, x: Tensor, idx: Tensor, eot_iter: int = 1) -> tuple[Evaluation, Tensor]:
    """Per-sample loss, success and the gradient of the summed loss w.r.t. the images only.

    eot_iter > 1 (expectation over transformation, for models with randomness in their
    forward pass): the gradient is the mean over that many forward/backward draws, while
    the loss and success returned are those of the last draw, as AutoAttack's APGD keeps
    them (autopgd_base.py, attack_single_run). The sum runs in draw order and is divided
    once, so eot_iter=1 is the single-draw gradient bit for bit.
    """
    x = x.detach().requires_grad_(True)
    total: Tensor | None = None
    for _ in range(eot_iter):
        with torch.enable_grad():
            ev = objective(x, idx)
            (grad,) = torch.autograd.grad(ev.loss.sum(), x)
        _check_finite(ev)
        total = grad.detach() if total is None else total + grad.detach()
    assert total is not None, "eot_iter must be >= 1 (attacks.checks.check_eot_iter)"
    if eot_iter > 1:
        total = total / float(eot_iter)
    # contiguous: a model whose loss ignores x gives an expanded zero gradient, which in-place updates refuse
    return Evaluation(ev.loss.detach(), ev.success.detach()), total.contiguous()
