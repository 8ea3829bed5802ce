"""AdamW with the usual exclusions from weight decay, and warmup + cosine set before each step.

RobustVLM steps its scheduler after the first optimiser step, so step 0 runs at the
initial lr; here the lr of step k is set before step k, from step 0 on.
"""
from __future__ import annotations

import math

import torch
from torch import nn

NO_DECAY_NAMES = ("positional_embedding", "class_embedding", "token_embedding", "logit_scale")


def param_groups(model: nn.Module, weight_decay: float, decay_all: bool = False) -> list[dict]:
    """No weight decay on norms, biases (all 1-D tensors) and embeddings; decay_all: on every
    parameter (RobustVLM's adversarial_training_clip.py passes all of them to AdamW)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        exempt = not decay_all and (p.ndim < 2 or any(k in name for k in NO_DECAY_NAMES))
        (no_decay if exempt else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, base_lr: float, warmup: int, total: int) -> float:
    """Linear warmup to base_lr over `warmup` steps (step 0 already > 0), then cosine to 0."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return 0.5 * base_lr * (1 + math.cos(math.pi * min(progress, 1.0)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
