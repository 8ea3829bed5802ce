"""Per-sample classification losses, written so that the attacker always *maximises* them.

Targeted losses are negated here (a targeted attacker minimises distance to the target).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def _others_max(logits: Tensor, cls: Tensor) -> Tensor:
    """max_{i != cls} z_i. Masking with -inf (not multiplying by 0) keeps negative logits right."""
    masked = logits.scatter(1, cls[:, None], float("-inf"))
    return masked.amax(dim=1)


def ce(logits: Tensor, y: Tensor | None, target: Tensor | None, kappa: float) -> Tensor:
    assert y is not None
    return F.cross_entropy(logits, y, reduction="none")


def ce_targeted(logits: Tensor, y: Tensor | None, target: Tensor | None, kappa: float) -> Tensor:
    assert target is not None
    return -F.cross_entropy(logits, target, reduction="none")


def dlr(logits: Tensor, y: Tensor | None, target: Tensor | None, kappa: float) -> Tensor:
    """Difference of Logits Ratio (Croce & Hein 2020): shift- and scale-invariant margin."""
    assert y is not None
    z_sorted = logits.sort(dim=1).values
    z_y = logits.gather(1, y[:, None])[:, 0]
    return -(z_y - _others_max(logits, y)) / (z_sorted[:, -1] - z_sorted[:, -3] + 1e-12)


def dlr_targeted(logits: Tensor, y: Tensor | None, target: Tensor | None, kappa: float) -> Tensor:
    assert y is not None and target is not None
    z_sorted = logits.sort(dim=1).values
    z_y = logits.gather(1, y[:, None])[:, 0]
    z_t = logits.gather(1, target[:, None])[:, 0]
    return -(z_y - z_t) / (z_sorted[:, -1] - 0.5 * (z_sorted[:, -3] + z_sorted[:, -4]) + 1e-12)


def cw_targeted(logits: Tensor, y: Tensor | None, target: Tensor | None, kappa: float) -> Tensor:
    """Carlini-Wagner margin towards the target: -max(max_{i!=t} z_i - z_t, -kappa)."""
    assert target is not None
    z_t = logits.gather(1, target[:, None])[:, 0]
    return -torch.clamp(_others_max(logits, target) - z_t, min=-kappa)


@dataclass(frozen=True)
class LossSpec:
    fn: Callable[[Tensor, Tensor | None, Tensor | None, float], Tensor]
    targeted: bool
    min_classes: int


LOSSES: dict[str, LossSpec] = {
    "ce": LossSpec(ce, targeted=False, min_classes=2),
    "dlr": LossSpec(dlr, targeted=False, min_classes=3),
    "ce-targeted": LossSpec(ce_targeted, targeted=True, min_classes=2),
    "dlr-targeted": LossSpec(dlr_targeted, targeted=True, min_classes=4),
    "cw-targeted": LossSpec(cw_targeted, targeted=True, min_classes=2),
}
