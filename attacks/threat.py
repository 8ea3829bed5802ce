"""The threat model: an eps-ball around x in L-inf or L2, intersected with the [0,1] box.

Every attack goes through these four functions, so bounds are handled in exactly one place.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from attacks.randomness import Random, draw

Norm = Literal["linf", "l2"]
NORMS: tuple[str, ...] = ("linf", "l2")


def norm_of(delta: Tensor, norm: Norm) -> Tensor:
    """Per-sample norm of a perturbation batch, shape [N]."""
    flat = delta.flatten(1)
    if norm == "linf":
        return flat.abs().amax(dim=1)
    return flat.norm(p=2, dim=1)


def _expand(v: Tensor, like: Tensor) -> Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def normalize(g: Tensor, norm: Norm) -> Tensor:
    """Scale each sample of g to unit norm (the steepest-ascent direction for L2)."""
    return g / (_expand(norm_of(g, norm), g) + 1e-12)


def project(x_adv: Tensor, x: Tensor, eps: float, norm: Norm) -> Tensor:
    """Closest point to x_adv in the eps-ball around x, then clipped to the image box.

    For L-inf the box clip keeps the point in the ball; for L2 clipping only shrinks the
    perturbation, so the result stays feasible too.
    """
    if norm == "linf":
        return torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp(0.0, 1.0)
    delta = x_adv - x
    n = _expand(norm_of(delta, norm), delta)
    factor = torch.clamp(eps / (n + 1e-12), max=1.0)
    return (x + delta * factor).clamp(0.0, 1.0)


def step(x_adv: Tensor, grad: Tensor, step_size: Tensor | float, norm: Norm) -> Tensor:
    """One steepest-ascent step of the given length (sign for L-inf, unit-L2 for L2)."""
    direction = grad.sign() if norm == "linf" else normalize(grad, norm)
    if isinstance(step_size, Tensor):
        step_size = _expand(step_size, x_adv)
    return x_adv + step_size * direction


def random_start(
    x: Tensor, eps: float, norm: Norm, generator: Random, *, uniform_ball: bool = False
) -> Tensor:
    """A random point of the threat set around x.

    uniform_ball=False: AutoAttack's start, a random direction scaled to norm exactly eps.
    uniform_ball=True: Madry's start, uniform in [-eps, eps] per pixel (L-inf), or a random
    direction with a radius uniform in [0, eps] (L2). `generator` is one generator for the
    batch or one per row (attacks.core.RowGenerators).
    """
    if norm == "linf":
        t = draw(torch.rand, tuple(x.shape), generator, x.device, x.dtype) * 2 - 1
        delta = eps * t if uniform_ball else eps * normalize(t, norm)
    else:
        t = draw(torch.randn, tuple(x.shape), generator, x.device, x.dtype)
        delta = eps * normalize(t, norm)
        if uniform_ball:
            r = draw(torch.rand, (x.shape[0],), generator, x.device, x.dtype)
            delta = delta * _expand(r, x)
    return (x + delta).clamp(0.0, 1.0)
