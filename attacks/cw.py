"""Targeted Carlini-Wagner: margin max_{i!=t} z_i - z_t driven below -kappa.

L-inf: APGD's projected steps on the CW margin inside the eps ball.
L2: Carlini & Wagner 2017: optimise w in tanh space with Adam on
||x' - x||^2 + c * max(margin, -kappa), binary search over c per sample, keep the smallest
successful perturbation. The margin masks the target with -inf, so it stays right when all
logits are negative (torchattacks' (1 - onehot) * z masking reads those as 0 and stalls).
"""
from __future__ import annotations

import torch
from torch import Tensor

from attacks.apgd import run_apgd
from attacks.checks import check_eps, check_norm, check_steps
from attacks.classify import clean_pass, labels_for
from attacks.core import attack_mode
from attacks.core_registry import register_core
from attacks.guard import check_valid
from attacks.losses import cw_targeted
from attacks.objectives import ClassifierObjective, Model
from attacks.randomness import SampleSeeds
from attacks.threat import norm_of

_C_UNBOUNDED = 1e10  # "no upper bound found yet" in the binary search over c


def cw(
    model: Model,
    x: Tensor,
    target: Tensor,
    eps: float | None = 4 / 255,
    norm: str = "linf",
    steps: int = 100,
    kappa: float = 0.0,
    seed: int | SampleSeeds = 0,
    *,
    c: float = 1.0,
    binary_search_steps: int = 9,
    lr: float = 0.01,
    abort_early: bool = True,
) -> Tensor:
    """Targeted CW attack; returns x_adv like x.

    norm="linf" needs eps. norm="l2" is the classic minimal-norm attack: eps=None leaves
    the norm free; with eps, only perturbations within it count. Samples where no target
    hit was found come back as x (L2) or at their highest-loss point (L-inf).
    """
    norm_ = check_norm(norm)
    check_steps(steps)
    if kappa < 0:
        raise ValueError(f"kappa={kappa} must be >= 0 (the confidence margin)")
    if norm_ == "linf" and eps is None:
        raise ValueError("norm='linf' needs eps (e.g. eps=4/255); eps=None is only for the L2 attack")
    eps = None if eps is None else check_eps(eps, norm_)
    with attack_mode(model):
        clean = clean_pass(model, x)
        t = labels_for(target, clean, x, "target")
        if norm_ == "linf":
            assert eps is not None
            objective = ClassifierObjective(model, None, "cw-targeted", t, success="target", kappa=kappa)
            return run_apgd(objective, x, eps=eps, norm="linf", steps=steps, seed=seed,
                            name="cw-linf").x_adv
        check_steps(binary_search_steps, "binary_search_steps")
        x_adv = _cw_l2(model, x, t, steps, c, binary_search_steps, kappa, lr, eps, abort_early)
    check_valid(x_adv, x, eps, "l2", "cw-l2")
    return x_adv


def _cw_l2(
    model: Model, x: Tensor, t: Tensor, steps: int, c: float, binary_search_steps: int,
    kappa: float, lr: float, eps: float | None, abort_early: bool,
) -> Tensor:
    n = x.shape[0]
    # Shrink slightly so that pixels at exactly 0 or 1 have a finite preimage.
    w0 = torch.atanh((2 * x - 1) * (1 - 1e-6)).detach()
    const = torch.full((n,), float(c), device=x.device)
    lower = torch.zeros(n, device=x.device)
    upper = torch.full((n,), _C_UNBOUNDED, device=x.device)
    best_l2 = torch.full((n,), float("inf"), device=x.device)
    best_adv = x.clone()
    check_every = max(steps // 10, 1)
    for _ in range(binary_search_steps):
        w = w0.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([w], lr=lr)
        hit = torch.zeros(n, dtype=torch.bool, device=x.device)
        previous = float("inf")
        for step in range(steps):
            with torch.enable_grad():
                candidate = (torch.tanh(w) + 1) / 2
                logits = model(candidate).float()
                margin_loss = cw_targeted(logits, None, t, kappa)  # = -max(margin, -kappa)
                l2_sq = (candidate - x).flatten(1).pow(2).sum(dim=1)
                total = (l2_sq - const * margin_loss).sum()
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            with torch.no_grad():
                success = (logits.argmax(dim=1) == t) & (margin_loss >= kappa)
                if eps is not None:
                    success &= norm_of(candidate - x, "l2") <= eps
                better = success & (l2_sq < best_l2)
                best_l2[better] = l2_sq[better]
                best_adv[better] = candidate[better].detach()
                hit |= success
            if abort_early and step % check_every == 0:
                # The original stopping rule: no 0.01% progress in steps/10 iterations.
                if total.item() > previous * 0.9999:
                    break
                previous = total.item()
        upper = torch.where(hit, torch.minimum(upper, const), upper)
        lower = torch.where(hit, lower, torch.maximum(lower, const))
        bounded = upper < _C_UNBOUNDED / 10
        const = torch.where(bounded, (lower + upper) / 2, const * 10)
    return best_adv


# On an objective (a VLM's token margin), CW is APGD's projected steps on the margin; the user
# sees cw()'s options (kappa, and the classic L2 attack's c, binary_search_steps, lr, abort_early).
register_core("cw", options_of=cw)(run_apgd)
