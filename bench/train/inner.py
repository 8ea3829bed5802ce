"""The inner attack of adversarial fine-tuning: RobustVLM's sign-momentum PGD, or the project's PGD.

`robustvlm` follows the attack RobustVLM's `train/adversarial_training_clip.py` runs for FARE and
TeCoA (`--attack pgd`, the `pgd` function of its `train/pgd_train.py`; Sim-CLIP's script runs the
same file), L-inf:

* start: a perturbation drawn uniformly in [-eps, eps] per pixel, *not* clipped to the image box
  (the first forward may see pixels slightly outside [0, 1]);
* each of the `steps` iterations: the gradient of the batch-mean loss w.r.t. the perturbation,
  NaN entries set to 0, its sign; velocity <- sign(momentum * velocity + that sign) (the velocity
  starts at 0 and is sign-normalised after every update); perturbation += step_size * velocity;
  clipped to [-eps, eps], then to the image box (x + delta in [0, 1]);
* the result: x + the last perturbation (no best-iterate bookkeeping).

With both the gradient and the velocity sign-normalised and momentum < 1, the velocity's sign is
the gradient's wherever the gradient is non-zero; the momentum only carries a pixel whose
gradient is exactly zero (or NaN) along its previous direction.

`pgd` is the project's PGD (attacks/pgd.py `run_pgd`): a start uniform in the ball and clipped to
the box, plain sign steps on the summed loss, one extra forward to score the last iterate.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

INNER_ATTACKS = ("robustvlm", "pgd")


def uniform_start(x: Tensor, eps: float, seed: int) -> Tensor:
    """RobustVLM's start: a perturbation uniform in [-eps, eps] per pixel, unclipped, drawn from a
    generator on x's device seeded with `seed` (a function of run seed, step and rank: exact resume)."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    return torch.empty_like(x).uniform_(-eps, eps, generator=generator)


def momentum_pgd(loss_of: Callable[[Tensor], Tensor], x: Tensor, delta: Tensor, *, eps: float, steps: int,
                 step_size: float, momentum: float) -> Tensor:
    """RobustVLM's inner L-inf PGD with sign momentum, maximising loss_of (a scalar, the batch mean)
    from the start perturbation `delta`; returns x + the final perturbation."""
    x = x.detach()
    delta = delta.detach()
    velocity = torch.zeros_like(x)
    for _ in range(steps):
        delta = delta.requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(loss_of(x + delta), delta)
        with torch.no_grad():
            grad = torch.where(grad.isnan(), torch.zeros_like(grad), grad)
            velocity = (momentum * velocity + grad.sign()).sign()
            delta = delta.detach() + step_size * velocity
            delta = delta.clamp(-eps, eps)
            delta = (x + delta).clamp(0.0, 1.0) - x
    return x + delta.detach()
