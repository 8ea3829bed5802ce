"""Argument checks shared by every attack: one ValueError naming the argument and what is allowed."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from attacks.threat import NORMS, Norm


def check_norm(norm: str) -> Norm:
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r} is not supported; use one of {', '.join(NORMS)}")
    return norm  # type: ignore[return-value]


def check_eps(eps: float, norm: str) -> float:
    if not isinstance(eps, (int, float)) or isinstance(eps, bool):
        raise ValueError(f"eps must be a number, got {type(eps).__name__}")
    eps = float(eps)
    # An L2 ball of radius > 1 is meaningful on images, an L-inf one is not.
    upper = 1.0 if norm == "linf" else float("inf")
    if not (0.0 < eps <= upper):
        raise ValueError(f"eps={eps} is out of range; {norm} needs 0 < eps <= {upper:g} (pixel units, e.g. 4/255)")
    return eps


def check_steps(steps: int, name: str = "steps") -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{name}={steps!r} must be an integer >= 1")
    return steps


def check_eot_iter(eot_iter: int) -> int:
    """Draws of a randomised model's randomness averaged per gradient (EOT); 1 = a plain gradient."""
    if isinstance(eot_iter, bool) or not isinstance(eot_iter, int) or eot_iter < 1:
        raise ValueError(f"eot_iter={eot_iter!r} must be an integer >= 1 (1 for a deterministic model, "
                         "e.g. 20 for a randomised defence, as AutoAttack's version='rand')")
    return eot_iter


def check_images(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() < 2 or not x.is_floating_point():
        raise ValueError("x must be a floating-point image batch [N, C, H, W] in [0, 1]")
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch; pass at least one image")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf; images must be finite values in [0, 1]")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"x has values in [{lo:.3g}, {hi:.3g}], outside [0, 1]; pass unnormalised pixels "
            "(normalisation belongs inside the model)"
        )


def check_labels(labels: Tensor, n: int, n_classes: int, name: str = "y") -> Tensor:
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.shape[0] != n:
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"{name} must be a 1-D tensor of {n} class indices (one per image), got {shape}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class indices, got dtype {labels.dtype}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(
            f"{name} has labels in [{int(labels.min())}, {int(labels.max())}], but the model has "
            f"{n_classes} classes; allowed: 0..{n_classes - 1}"
        )
    return labels.long()


def check_target(target: Tensor, y: Tensor | None, n_classes: int) -> Tensor:
    target = check_labels(target, y.shape[0] if y is not None else target.shape[0], n_classes, "target")
    if y is not None and bool((target == y.to(target.device)).any()):
        i = int((target == y.to(target.device)).nonzero()[0])
        raise ValueError(f"target equals the true label for sample {i}; a target must be a different class")
    return target


def check_choice(value: str, allowed: Sequence[str], name: str) -> str:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; use one of {', '.join(allowed)}")
    return value
