"""Clean zero-shot accuracy of an encoder on a task (for model cards and quick checks)."""
from __future__ import annotations

import torch

from bench.encoders import Encoder
from tasks.zeroshot import ZeroShotTask


@torch.no_grad()
def clean_accuracy(encoder: Encoder, task: ZeroShotTask, batch_size: int = 256) -> float:
    victim = task.victim(encoder, None)
    ids = task.sample_ids(None, 0)
    device = victim.class_weights.device
    correct = 0
    for i in range(0, len(ids), batch_size):
        x, y = task.load(ids[i : i + batch_size], encoder.image_size)
        correct += int((victim(x.to(device)).argmax(dim=1).cpu() == y).sum())
    return correct / len(ids)
