"""Madry et al. PGD on any Objective: fixed-size sign steps (L-inf) or unit-L2 steps (L2).

eot_iter > 1 steps along the mean gradient over that many draws of a randomised model
(expectation over transformation; torchattacks' EOTPGD for L-inf).
"""
from __future__ import annotations

import torch
from torch import Tensor

from attacks import threat
from attacks.checks import check_choice, check_eot_iter, check_eps, check_norm, check_steps, check_target
from attacks.classify import clean_pass, labels_for
from attacks.core import AttackResult, attack_mode, evaluate, loss_and_grad
from attacks.core_registry import register_core
from attacks.guard import check_valid
from attacks.losses import LOSSES
from attacks.objectives import ClassifierObjective, Model, Objective
from attacks.randomness import SampleSeeds, generator_rows, make_generator
from attacks.threat import Norm


def default_step_size(eps: float, steps: int) -> float:
    """Madry's rule: 2.5 * eps / steps, so that the walk can cross the ball."""
    return 2.5 * eps / steps


@register_core("pgd")
def run_pgd(
    objective: Objective,
    x: Tensor,
    *,
    eps: float,
    norm: Norm = "linf",
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    seed: int | torch.Generator | SampleSeeds = 0,
    eot_iter: int = 1,
    stop_on_success: bool = True,
    active: Tensor | None = None,
    name: str = "pgd",
) -> AttackResult:
    """PGD on an objective; returns the final iterate (or the first successful one).

    stop_on_success=True drops a sample at its first successful iterate (the robustness
    answer is settled); False runs every sample for all steps, as adversarial training
    wants. The loss reported is that of the returned point. eot_iter: each step's gradient
    is the mean over that many draws of a randomised model; success and loss are the last
    draw's (the final iterate is scored by one pass). With eot_iter > 1 no sample is dropped
    (one successful draw of a randomised model settles nothing): all run every step, and
    with stop_on_success a sample returns its last successful iterate, else its final one.
    """
    check_eot_iter(eot_iter)
    n = x.shape[0]
    alpha = default_step_size(eps, steps) if step_size is None else float(step_size)
    generator = make_generator(seed, x.device)
    active = torch.ones(n, dtype=torch.bool, device=x.device) if active is None else active
    idx = active.nonzero()[:, 0]
    x0 = x[idx]
    x_adv = (threat.random_start(x0, eps, norm, generator_rows(generator, idx), uniform_ball=True) if random_start
             else x0.clone())
    result = AttackResult(x.clone(), torch.zeros(n, dtype=torch.bool, device=x.device),
                          torch.full((n,), float("-inf"), device=x.device))
    drop_on_success = stop_on_success and eot_iter == 1
    for i in range(steps + 1):
        if idx.numel() == 0:
            break
        if i == steps:  # the last iterate only needs to be scored
            ev = evaluate(objective, x_adv, idx)
        else:
            ev, grad = loss_and_grad(objective, x_adv, idx, eot_iter)
        if stop_on_success and not drop_on_success:  # EOT: a later success replaces an earlier one
            take = ev.success | ~result.success[idx]
            rows = idx[take]
            result.x_adv[rows], result.loss[rows], result.success[rows] = x_adv[take], ev.loss[take], ev.success[take]
        else:
            result.x_adv[idx], result.loss[idx] = x_adv, ev.loss
            result.success[idx] = ev.success
        if drop_on_success:
            keep = ~ev.success
            idx, x0, x_adv = idx[keep], x0[keep], x_adv[keep]
            if i < steps:
                grad = grad[keep]
        if i < steps:
            with torch.no_grad():
                x_adv = threat.project(threat.step(x_adv, grad, alpha, norm), x0, eps, norm)
    check_valid(result.x_adv, x, eps, norm, name)
    return result


PGD_LOSSES = ("ce", "dlr", "cw")


def pgd(
    model: Model,
    x: Tensor,
    y: Tensor,
    eps: float = 4 / 255,
    norm: str = "linf",
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    loss: str = "ce",
    target: Tensor | None = None,
    seed: int | SampleSeeds = 0,
    *,
    stop_on_success: bool = True,
    eot_iter: int = 1,
) -> Tensor:
    """Madry PGD against a classifier; returns x_adv like x.

    step_size defaults to 2.5 * eps / steps. With `target`, the loss is turned towards the
    target (ce -> -CE(target), dlr -> targeted DLR, cw -> CW margin) and success means the
    target is predicted. stop_on_success=False returns every sample's final iterate
    (torchattacks.PGD's behaviour). eot_iter > 1: gradients averaged over that many draws of
    a randomised model (torchattacks.EOTPGD).
    """
    norm_ = check_norm(norm)
    eps = check_eps(eps, norm_)
    check_steps(steps)
    check_choice(loss, PGD_LOSSES, "loss")
    check_eot_iter(eot_iter)
    if step_size is not None and not float(step_size) > 0:
        raise ValueError(f"step_size={step_size} must be > 0 (or None for 2.5 * eps / steps)")
    with attack_mode(model):
        clean = clean_pass(model, x)
        y = labels_for(y, clean, x)
        if target is None and loss == "cw":
            raise ValueError("loss='cw' is the targeted CW margin; pass target= or use loss='ce' / 'dlr'")
        loss_name = loss if target is None else _TARGETED[loss]
        if clean.n_classes < LOSSES[loss_name].min_classes:
            raise ValueError(f"loss={loss_name!r} needs at least {LOSSES[loss_name].min_classes} classes; "
                             f"this model has {clean.n_classes}")
        if target is None:
            objective = ClassifierObjective(model, y, loss_name)
        else:
            t = check_target(target, y, clean.n_classes).to(x.device)
            objective = ClassifierObjective(model, y, loss_name, t, success="target")
        run = run_pgd(objective, x, eps=eps, norm=norm_, steps=steps, step_size=step_size,
                      random_start=random_start, seed=seed, eot_iter=eot_iter,
                      stop_on_success=stop_on_success, name=f"pgd-{loss}")
    return run.x_adv


_TARGETED = {"ce": "ce-targeted", "dlr": "dlr-targeted", "cw": "cw-targeted"}
