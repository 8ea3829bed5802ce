"""Shared set-up of the classifier attacks: argument checks, the clean pass, AutoAttack's targets."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from attacks.checks import check_images, check_labels
from attacks.core import NonFiniteLossError
from attacks.objectives import Model


@dataclass(frozen=True)
class CleanPass:
    logits: Tensor  # [N, C] on the clean images
    n_classes: int


def clean_pass(model: Model, x: Tensor) -> CleanPass:
    """Check the images and run the model once on them (no graph)."""
    check_images(x)
    with torch.no_grad():
        logits = model(x)
    if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != x.shape[0]:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"model must map images [N, C, H, W] to logits [N, classes]; it returned {shape}")
    if not bool(torch.isfinite(logits).all()):
        raise NonFiniteLossError("the model returned NaN/inf logits on the clean images")
    return CleanPass(logits.float(), logits.shape[1])


def labels_for(y: Tensor, clean: CleanPass, x: Tensor, name: str = "y") -> Tensor:
    return check_labels(y, x.shape[0], clean.n_classes, name).to(x.device)


def top_targets(logits: Tensor, y: Tensor, k: int) -> Tensor:
    """AutoAttack's APGD-T targets: the k highest-scoring non-true classes of the clean logits."""
    masked = logits.scatter(1, y[:, None], float("-inf"))
    return masked.argsort(dim=1, descending=True, stable=True)[:, :k]
