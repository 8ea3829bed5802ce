"""What captioning and VQA tasks share: a seeded sample of items, images, prompts, scores.

A VLM task names, per sample, the strings an untargeted attacker pushes away from (the
ground-truth captions, the frequent answers) and scores the VLM's text output in [0, ...]
against the references; the attack protocol (tasks/vlm_attack.py) keeps the lowest score.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from benchutil.errors import BenchError
from tasks.base import AttackSettings, Models, Record, Victim, seeded_subset
from tasks.demonstrations import for_sample, without_colons
from tasks.imagefolder import check_images, load_image
from tasks.target_seeds import target_selection_seed
from tasks.vlm_attack import attack_batch, check_vlm_attack


class VLMPrompts(Protocol):
    caption: str
    question: str
    caption_tokens: int
    answer_tokens: int
    demonstrations: int
    caption_demonstration: str
    question_demonstration: str
    beams: int
    caption_length_penalty: float
    answer_length_penalty: float


class Scorer(Protocol):
    def __call__(self, outputs: dict[str, str]) -> dict[str, float]: ...


class VLMTask:
    """Base: items keyed by string ids, each with an image file; attacked through a VLM."""

    kind = "vlm"
    metric = "score"
    # Strings targeted attack members push every sample *towards* (RobustVLM's VQA protocol).
    extra_targets: tuple[str, ...] = ()

    def __init__(self, name: str, images: dict[str, Path]) -> None:
        self.name, self.images = name, images
        self._scorer: tuple[tuple[str, ...], Scorer] | None = None
        self.settings: dict[str, Any] = {}  # protocol settings a run records (metric variant, lengths)

    def check_data(self, ids: list[str]) -> None:
        check_images([self.images[i] for i in ids])

    def check_attack(self, settings: AttackSettings) -> None:
        check_vlm_attack(settings)

    def victim(self, models: Models, cache_dir: Any) -> Victim:
        vlm, encoder, name = models.vlm(), models.encoder, models.vlm_name
        pad = getattr(vlm, "pad_colour", None)  # LLaVA pads images to a square (tasks.contracts.VLM)
        config = {"vlm": name, "vlm_sha256": vlm.sha256}
        if getattr(vlm, "tower_source", None):  # the VLM runs its own tuned copy of the encoder's tower (Δ²LLaVA)
            config["vlm_vision_tower"] = vlm.tower_source
        return Victim(vlm, f"{name}+{encoder.provenance.name}", f"{encoder.provenance.sha256}+{vlm.sha256}",
                      vlm.image_size, config,
                      {"pad_colour": pad} if pad is not None else {})

    def attack(self, victim: Any, ids: list[str], batch: Tensor, settings: AttackSettings) -> list[Record]:
        device = next(victim.parameters()).device
        return attack_batch(victim, self, ids, batch.to(device), settings, self.run_scorer(settings.evaluated))

    def run_scorer(self, evaluated: tuple[str, ...]) -> Scorer:
        """The scorer of a run's sample set, built once per run (CIDEr tokenises its references)."""
        if self._scorer is None or self._scorer[0] != evaluated:
            self._scorer = (evaluated, self.scorer(list(evaluated)))
        return self._scorer[1]

    @property
    def ids(self) -> list[str]:
        return list(self.images)

    # Paper datasets select as RobustVLM does (run_evaluation.py prepare_eval_samples:
    # np.random.seed(42), then choice of n without replacement over the dataset's order),
    # whatever --seed says; None: a shuffle seeded by --seed.
    selection_seed: int | None = None
    # Paper datasets clean the VLM's text as RobustVLM does before scoring (see `postprocess`).
    reference_postprocess = False
    # The training split's query set (tasks.demonstrations), read on first use; None: no training split.
    demonstration_pool: Callable[[], Sequence[Any]] | None = None
    # RobustVLM stops attacking a caption once its CIDEr is below this (COCO 10, Flickr30k 2) and
    # an answer at accuracy 0 (our exact default); --protocol robustvlm applies it.
    robustvlm_early_stop: float | None = None

    def sample_ids(self, n: int | None, seed: int) -> list[str]:
        """A fixed, seeded subset (the same for clean and every attack), in a stable order."""
        ids = self.ids
        if self.selection_seed is not None and n is not None and n < len(ids):
            chosen = np.random.RandomState(self.selection_seed).choice(len(ids), n, replace=False)
            return [ids[int(k)] for k in chosen]
        return seeded_subset(ids, n, seed)

    def select_for_target(self, target: str) -> None:
        """A targeted run's samples: RobustVLM selects them with the target's own seed
        (tasks.target_seeds); only datasets that select as RobustVLM does follow it."""
        if self.selection_seed is not None:
            self.selection_seed = target_selection_seed(target, self.selection_seed)
            self.settings = {**self.settings, "selection_seed": self.selection_seed}

    def postprocess(self, text: str) -> str:
        """The reference's cleaning of a generated text (none here; the task kinds define it)."""
        return text

    def load(self, ids: list[str], size: int, pad_colour: tuple[int, int, int] | None = None) -> Tensor:
        return torch.stack([load_image(self.images[i], size, pad_colour) for i in ids])

    def answers(self, vlm: Any, ids: list[str], images: Tensor) -> list[str]:
        """The VLM's outputs for these samples (images [len(ids), 3, S, S]), decoded as it asks."""
        texts = vlm.generate(images, self.prompts(ids, vlm.prompts), self.max_new_tokens(vlm.prompts),
                             length_penalty=self.length_penalty(vlm.prompts))
        return [self.postprocess(t) for t in texts] if self.reference_postprocess else texts

    def length_penalty(self, style: VLMPrompts) -> float:
        raise NotImplementedError

    def demonstrations_for(self, sample_id: str, style: VLMPrompts) -> list[Any]:
        """The sample's text-only demonstrations, where the VLM's prompts carry them (none for most)."""
        if not style.demonstrations:
            return []
        if self.demonstration_pool is None:
            raise BenchError(f"{self.name} has no training split to draw the {style.demonstrations} text-only "
                             "demonstrations this VLM's zero-shot prompts carry")
        return for_sample(self.demonstration_pool(), style.demonstrations, sample_id)

    def prompts(self, ids: list[str], style: VLMPrompts) -> list[str]:
        raise NotImplementedError

    def max_new_tokens(self, style: VLMPrompts) -> int:
        raise NotImplementedError

    def attack_targets(self, ids: list[str]) -> list[list[str]]:
        """Per sample, the strings whose likelihood the untargeted attack lowers, one pass each."""
        raise NotImplementedError

    def push_targets(self, ids: list[str]) -> list[list[str]] | None:
        """Per sample, the strings targeted attack members push towards, one pass each (a yes/no or
        multiple-choice task: its wrong answers); None: every sample is pushed towards
        `extra_targets`."""
        return None

    def sample_facts(self, sample_id: str) -> dict[str, Any]:
        """Fields a sample's records carry beside its scores that its cell aggregate reads
        (tasks.cell_aggregates: POPE's split and label); none for most kinds."""
        return {}

    def training_targets(self, ids: list[str]) -> list[list[str]]:
        """Per sample, what a VLM trained on this split learns to answer (tiny-llava; one drawn per
        step): the first string the untargeted attack lowers (the most common answer, the right
        choice). Captioning: every reference."""
        return [targets[:1] for targets in self.attack_targets(ids)]

    def scorer(self, ids: list[str]) -> Scorer:
        """Scores outputs of any subset of `ids` (the evaluated set, which CIDEr's idf depends on)."""
        raise NotImplementedError


class ShortAnswerTask(VLMTask):
    """A task answered in a few words (VQA, POPE): each sample's question in the VLM's question
    template, after its text-only demonstrations where the VLM's prompts carry them; the
    dataset's answer length, else the VLM's."""

    items: dict[str, Any]  # id -> item with a .question
    answer_tokens: int | None = None

    def question_template(self, style: VLMPrompts) -> str:
        return style.question

    def prompts(self, ids: list[str], style: VLMPrompts) -> list[str]:
        template = self.question_template(style)
        return ["".join(style.question_demonstration.format(question=q, answer=without_colons(a))
                        for q, a in self.demonstrations_for(i, style))
                + template.format(question=self.items[i].question) for i in ids]

    def max_new_tokens(self, style: VLMPrompts) -> int:
        return self.answer_tokens or style.answer_tokens

    def length_penalty(self, style: VLMPrompts) -> float:
        return style.answer_length_penalty
