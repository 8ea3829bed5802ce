"""The validity guard: no adversarial batch leaves an attack unchecked.

A perturbation outside the threat model would make a robustness number meaningless, and it
would do so silently. Every public attack calls `check_valid` on what it returns.
"""
from __future__ import annotations

import torch
from torch import Tensor

from attacks.threat import Norm, norm_of

TOLERANCE = 1e-6


class InvalidAdversarialError(RuntimeError):
    """An attack produced a point outside the threat model: a bug, never a result."""


def check_valid(x_adv: Tensor, x: Tensor, eps: float | None, norm: Norm, attack: str) -> None:
    """Raise InvalidAdversarialError unless x_adv is finite, in [0,1] and within eps of x.

    Low-precision outputs (fp16/bf16) are checked against the dtype's own rounding unit
    instead of 1e-6, since the clean image itself is only known to that precision.
    """
    if x_adv.shape != x.shape:
        raise InvalidAdversarialError(f"{attack}: output shape {tuple(x_adv.shape)} != input {tuple(x.shape)}")
    tol = max(TOLERANCE, torch.finfo(x_adv.dtype).eps) if x_adv.dtype.is_floating_point else TOLERANCE
    a, b = x_adv.double(), x.double()
    if not torch.isfinite(a).all():
        raise InvalidAdversarialError(f"{attack}: output has {int((~torch.isfinite(a)).sum())} non-finite values")
    lo, hi = float(a.min()), float(a.max())
    if lo < -tol or hi > 1 + tol:
        raise InvalidAdversarialError(f"{attack}: output leaves the [0,1] image box (min {lo:.3g}, max {hi:.3g})")
    if eps is not None:
        dist = norm_of(a - b, norm)
        worst = int(dist.argmax())
        if float(dist[worst]) > eps + tol:
            raise InvalidAdversarialError(
                f"{attack}: sample {worst} is outside the {norm} ball: "
                f"||delta|| = {float(dist[worst]):.8f} > eps = {eps:.8f}"
            )


def checked_norms(x_adv: Tensor, x: Tensor, eps: float, norm: Norm, attack: str) -> tuple[list[float], list[float]]:
    """Per-sample (linf, l2) of the points about to be recorded, after the guard passes them.

    Records are the only place a number leaves the project, so every stored adversarial
    example is checked here against the *run's* eps and norm, whichever backend produced
    it (ours, pyautoattack, torchattacks classes that take no eps).
    """
    check_valid(x_adv, x, eps, norm, attack)
    delta = (x_adv - x).flatten(1)
    return delta.abs().amax(dim=1).tolist(), delta.norm(dim=1).tolist()
