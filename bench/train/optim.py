"""AdamW with the usual exclusions from weight decay, and warmup + cosine set before each step.

Both schedules are open_clip's `cosine_lr` (src/training/scheduler.py, which RobustVLM's and
Sim-CLIP's training scripts import): base_lr * (k + 1) / warmup for k < warmup, then
0.5 * (1 + cos(pi * (k - warmup) / (total - warmup))) * base_lr. They differ at step 0 only:

* `ours`: the lr of step k is cosine_lr(k), set before step k, from step 0 on;
* `robustvlm`: RobustVLM calls the scheduler after each optimiser step with the number of steps
  done, so step k >= 1 runs at cosine_lr(k) too, but step 0 runs at the lr AdamW was built with,
  the base lr (train/adversarial_training_clip.py, `train_one_epoch`).
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


SCHEDULES = ("ours", "robustvlm")


def lr_at(step: int, base_lr: float, warmup: int, total: int, schedule: str = "ours") -> float:
    """Linear warmup to base_lr over `warmup` steps (step 0 already > 0), then cosine to 0;
    schedule "robustvlm": step 0 at base_lr (see above)."""
    if schedule == "robustvlm" and step == 0:
        return base_lr
    if step < warmup:
        return base_lr * (step + 1) / warmup
    if schedule == "robustvlm":  # cosine_lr's own order of operations, to the last bit
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup))) * base_lr
    progress = (step - warmup) / max(total - warmup, 1)
    return 0.5 * base_lr * (1 + math.cos(math.pi * min(progress, 1.0)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
