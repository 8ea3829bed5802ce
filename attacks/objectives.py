"""The objective interface every attack core optimises.

An objective maps a batch of candidate images to a per-sample loss (to maximise) and a
per-sample success flag. The cores only ever see this interface, so a VLM's caption loss
runs on the same APGD and PGD code as a classifier's cross-entropy.

Cores shrink the batch as samples succeed, so objectives receive `idx`: the positions of
the current rows in the batch the objective was built for (to pick labels, targets, ...).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import Tensor

from attacks.losses import LOSSES

Model = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Evaluation:
    loss: Tensor  # [n], differentiable w.r.t. the images; the attacker maximises it
    success: Tensor  # [n] bool, detached: the attack goal is reached for this sample


class Objective(Protocol):
    def __call__(self, x: Tensor, idx: Tensor) -> Evaluation: ...


SuccessRule = Literal["misclassified", "target"]


class ClassifierObjective:
    """A classification loss on model(x) with labels y (and targets for targeted losses).

    success="misclassified" counts any wrong prediction (AutoAttack's APGD-T: a targeted
    loss used to measure untargeted robustness); success="target" needs the target class
    predicted (with margin kappa for the CW loss).
    """

    def __init__(
        self,
        model: Model,
        y: Tensor | None,
        loss: str,
        target: Tensor | None = None,
        success: SuccessRule = "misclassified",
        kappa: float = 0.0,
    ) -> None:
        self.model, self.y, self.target, self.kappa = model, y, target, kappa
        self.spec = LOSSES[loss]
        self.success_rule = success

    def logits(self, x: Tensor) -> Tensor:
        return self.model(x).float()

    def __call__(self, x: Tensor, idx: Tensor) -> Evaluation:
        z = self.logits(x)
        y = self.y[idx] if self.y is not None else None
        target = self.target[idx] if self.target is not None else None
        loss = self.spec.fn(z, y, target, self.kappa)
        with torch.no_grad():
            pred = z.argmax(dim=1)
            if self.success_rule == "misclassified":
                assert y is not None
                success = pred != y
            else:
                assert target is not None
                success = pred == target
                if self.kappa > 0:
                    # cw_targeted is -max(margin, -kappa): it reaches its ceiling at margin <= -kappa.
                    success &= loss >= self.kappa
        return Evaluation(loss=loss, success=success)
