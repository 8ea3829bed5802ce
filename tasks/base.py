"""The Task protocol (what the one runner needs of every kind of task) and the one record core.

A task names its samples, loads a batch of them, and attacks a batch into records: one
JSON-able dict per sample with the same core fields for every task kind (id, clean and
adversarial score, the attack that won, the perturbation's norms) plus task-specific
extras (labels and predictions; outputs and target hits). Leaderboards, summaries and
statistics read the core only (and, for a task whose cell is an aggregate such as POPE's F1,
the record fields that aggregate names: tasks/cell_aggregates.py), so a new task kind is one
new file.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import Tensor

from attacks import checked_norms
from attacks.randomness import SampleSeeds
from attacks.table import AttackEntry

Record = dict[str, Any]


@dataclass(frozen=True)
class AttackSettings:
    """One batch's attack: the table entry, threat model, budget, seed and run options."""

    entry: AttackEntry
    eps: float
    norm: str
    steps: int
    seed: int  # this batch's seed (the runner derives it from the run seed and the batch index)
    args: dict[str, Any] = field(default_factory=dict)  # checked against the entry's cores
    target: str | None = None  # VLM tasks: push the output towards this string
    early_stop: float | None = None  # VLM tasks: stop attacking a sample at this score (optimistic)
    evaluated: tuple[str, ...] = ()  # the run's sample set (CIDEr's idf depends on it)
    protocol: str = "strict"  # VLM tasks: strict | robustvlm | simclip (tasks.vlm_attack.VLM_PROTOCOLS)
    precision: str = "fp32"  # what the attack computes in (attacks.precision); results are judged in fp32
    sample_seeds: tuple[int, ...] = ()  # one per sample of the batch (the runner derives them from the ids)
    # Called with (id, clean image, recorded adversarial image) for every recorded sample
    # (bench run --save-examples keeps a few as pictures); None: nothing is kept.
    keep_example: Callable[[str, Tensor, Tensor], None] | None = None

    @property
    def attack_seed(self) -> int | SampleSeeds:
        """What our attack cores draw random starts from: each sample's own seed where the
        runner gave them (so results do not depend on the batch size), else the batch seed."""
        return SampleSeeds(self.sample_seeds) if self.sample_seeds else self.seed

    @property
    def refine(self) -> bool:
        """RobustVLM's protocol: a last APGD pass from the best point so far (tasks.vlm_attack)."""
        return self.protocol == "robustvlm"

    @property
    def attacking(self) -> bool:
        return self.eps > 0 and bool(self.entry.members or self.entry.external)


@dataclass
class Victim:
    """What a task attacks, and how runs name it: a zero-shot classifier, or a VLM around the encoder."""

    model: Any
    label: str  # "clip", "tiny-llava+clip": the run folder's and the summary's name for it
    sha256: str  # the weights' identity (encoder, '+' VLM)
    image_size: int
    config: dict[str, Any] = field(default_factory=dict)  # recorded in config.json (e.g. vlm, vlm_sha256)
    load_options: dict[str, Any] = field(default_factory=dict)  # how the task loads images for it (LLaVA: padded)


class Models(Protocol):
    """The models of one encoder: the encoder itself, and the VLM built around it (on first use)."""

    encoder: Any
    vlm_name: str  # as the user named it (--vlm or the suite's default)

    def vlm(self) -> Any: ...


class Task(Protocol):
    name: str
    kind: str  # "zero-shot classification", "captioning", "vqa"
    metric: str  # the score's unit: "accuracy %", "CIDEr", "VQA acc"
    settings: dict[str, Any]  # protocol settings recorded in every run's config (metric variant, lengths)
    robustvlm_early_stop: float | None  # the score below which RobustVLM stops attacking a sample

    def sample_ids(self, n: int | None, seed: int) -> list[str]: ...
    def check_attack(self, settings: AttackSettings) -> None: ...  # ValueError when it does not apply
    def check_data(self, ids: list[str]) -> None: ...  # BenchError naming an unreadable sample
    def victim(self, models: Models, cache_dir: Any) -> Victim: ...
    def load(self, ids: list[str], size: int, **options: Any) -> Any: ...  # a batch, as `attack` takes it
    def attack(self, victim: Any, ids: list[str], batch: Any, settings: AttackSettings) -> list[Record]: ...


def core_records(ids: list[str], x: Tensor, x_adv: Tensor, settings: AttackSettings, clean: list[float],
                 adv: list[float], winners: list[str | None], extras: list[Record]) -> list[Record]:
    """The records of a batch; the adversarial points are checked against the run's ball first."""
    linf, l2 = checked_norms(x_adv, x, settings.eps, settings.norm, settings.entry.name)  # type: ignore[arg-type]
    if settings.keep_example is not None:
        for j, i in enumerate(ids):
            settings.keep_example(i, x[j], x_adv[j])
    return [{"id": i, "clean_score": clean[j], "adv_score": adv[j], "winner": winners[j],
             "linf": round(linf[j], 8), "l2": round(l2[j], 6), **extras[j]} for j, i in enumerate(ids)]


def seeded_subset(ids: list[str], n: int | None, seed: int) -> list[str]:
    """The first n of the ids in a seeded shuffle (all of them for None): a run's sample set, the
    same for clean and every attack."""
    shuffled = list(ids)
    random.Random(seed).shuffle(shuffled)
    return shuffled if n is None else shuffled[:n]


def refuse_target(settings: AttackSettings, task: str) -> None:
    """--target pushes a VLM's output towards a string: no other task kind has one."""
    if settings.target is not None:
        raise ValueError(f"--target applies to captioning / VQA tasks; drop it or drop {task}")

