"""What captioning and VQA tasks share: a seeded sample of items, images, prompts, scores.

A VLM task names, per sample, the strings an untargeted attacker pushes away from (the
ground-truth captions, the frequent answers) and scores the VLM's text output in [0, ...]
against the references; the attack protocol (tasks/vlm_attack.py) keeps the lowest score.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from tasks.imagefolder import load_image


class VLMPrompts(Protocol):
    caption: str
    question: str
    caption_tokens: int
    answer_tokens: int


class Scorer(Protocol):
    def __call__(self, outputs: dict[str, str]) -> dict[str, float]: ...


class VLMTask:
    """Base: items keyed by string ids, each with an image file."""

    kind = "vlm"
    metric = "score"
    # Strings every sample is additionally pushed *towards* (RobustVLM's VQA protocol).
    extra_targets: tuple[str, ...] = ()

    def __init__(self, name: str, images: dict[str, Path]) -> None:
        self.name, self.images = name, images

    @property
    def ids(self) -> list[str]:
        return list(self.images)

    def sample_ids(self, n: int | None, seed: int) -> list[str]:
        """A fixed, seeded subset (the same for clean and every attack), in a stable order."""
        ids = self.ids
        random.Random(seed).shuffle(ids)
        return ids if n is None else ids[:n]

    def load(self, ids: list[str], size: int) -> Tensor:
        return torch.stack([load_image(self.images[i], size) for i in ids])

    def answers(self, vlm: Any, ids: list[str], images: Tensor) -> list[str]:
        """The VLM's greedy outputs for these samples (images [len(ids), 3, S, S])."""
        return vlm.generate(images, self.prompts(ids, vlm.prompts), self.max_new_tokens(vlm.prompts))

    def prompts(self, ids: list[str], style: VLMPrompts) -> list[str]:
        raise NotImplementedError

    def max_new_tokens(self, style: VLMPrompts) -> int:
        raise NotImplementedError

    def attack_targets(self, ids: list[str]) -> list[list[str]]:
        """Per sample, the strings whose likelihood the untargeted attack lowers, one pass each."""
        raise NotImplementedError

    def scorer(self, ids: list[str]) -> Scorer:
        """Scores outputs of any subset of `ids` (the evaluated set, which CIDEr's idf depends on)."""
        raise NotImplementedError
