"""Clean scores for model cards and quick checks: zero-shot accuracy, VLM CIDEr / VQA accuracy."""
from __future__ import annotations

import numpy as np
import torch

from bench.encoders import Encoder
from tasks.cell_aggregates import aggregate_of
from tasks.vlm_task import VLMTask
from tasks.zeroshot import ZeroShotTask


@torch.no_grad()
def clean_accuracy(encoder: Encoder, task: ZeroShotTask, batch_size: int = 256) -> float:
    victim = task.classifier(encoder, None)
    ids = task.sample_ids(None, 0)
    device = victim.class_weights.device
    correct = 0
    for i in range(0, len(ids), batch_size):
        x, y = task.load(ids[i : i + batch_size], encoder.image_size)
        correct += int((victim(x.to(device)).argmax(dim=1).cpu() == y).sum())
    return correct / len(ids)


@torch.no_grad()
def clean_vlm_score(vlm: torch.nn.Module, task: VLMTask, n: int | None = None, batch_size: int = 64) -> float:
    """Mean clean score (CIDEr or VQA accuracy %) of a VLM on a task's first n seeded samples."""
    ids = task.sample_ids(n, 0)
    scorer, outputs = task.scorer(ids), {}
    device = next(vlm.parameters()).device
    for i in range(0, len(ids), batch_size):
        chunk = ids[i : i + batch_size]
        outputs.update(zip(chunk, task.answers(vlm, chunk, task.load(chunk, vlm.image_size).to(device))))
    return task_cell(task, scorer(outputs))


def constant_output_score(task: VLMTask, output: str) -> float:
    """The score of answering every sample with one string (the trivial baselines)."""
    ids = task.sample_ids(None, 0)
    return task_cell(task, task.scorer(ids)({i: output for i in ids}))


def task_cell(task: VLMTask, scores: dict[str, float]) -> float:
    """The task's cell over these per-sample scores, as the leaderboard forms it: their mean, or
    the aggregate the task's settings name (POPE's mean F1)."""
    aggregate = aggregate_of(task.settings)
    ids = list(scores)
    if aggregate is None:
        return sum(scores.values()) / len(ids)
    facts = {name: np.array([task.sample_facts(i)[name] for i in ids]) for name in aggregate.fields}
    return aggregate.value([scores[i] for i in ids], facts)
