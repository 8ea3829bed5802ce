"""Training tiny-llava: LLaVA's recipe (frozen vision tower; projector + LM learn) on the
tiny world's captions, VQA and TextVQA train splits, deterministic on a CPU.

Which examples a step sees, and which reference caption each gets, are pure functions of
(seed, step), so a resumed run replays exactly what an uninterrupted one would.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bench.encoders.weights import weights_sha256
from bench.run.environment import git_commit, versions
from bench.run.evaluate import clean_vlm_score, constant_output_score
from bench.suites import get_suite, load_task
from bench.train import loop
from bench.train.checkpoint import write_card
from bench.train.data import decode_images
from bench.train.images import StepBatches
from bench.train.optim import param_groups
from bench.vlm.tiny_llava import (
    PROMPTS,
    assemble,
    build_parts,
    load_tiny_llava,
    save_parts,
)

WEIGHTS_FILE = "tiny-llava.safetensors"
CARD_FILE = "tiny-llava.json"


@dataclass(frozen=True)
class VLMRecipe:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    wd: float = 0.01
    warmup: int = 100
    seed: int = 0
    checkpoint_every: int = 250
    textvqa_repeats: int = 4  # the reading split is small: seen 4x as often per image


@dataclass(frozen=True)
class Examples:
    images: Tensor  # uint8 [M, 3, H, W], each distinct image once
    image_of: Tensor  # [N] row -> image
    prompts: list[str]
    targets: list[list[str]]  # one or more acceptable targets (caption references)


def read_examples(world: Path, recipe: VLMRecipe) -> Examples:
    """Every tiny VLM task's training split, asked as its evaluated split asks (bench.tiny.suite.training_tasks)."""
    from bench.tiny.suite import training_tasks

    paths: dict[Path, int] = {}
    image_of, prompts, targets = [], [], []
    for name, task in training_tasks(world).items():
        ids = task.ids
        rows = list(zip(ids, task.prompts(ids, PROMPTS), task.training_targets(ids)))
        for sample_id, prompt, options in rows * (recipe.textvqa_repeats if name == "tiny-textvqa" else 1):
            image_of.append(paths.setdefault(task.images[sample_id], len(paths)))
            prompts.append(prompt)
            targets.append(options)
    return Examples(decode_images(list(paths)), torch.tensor(image_of), prompts, targets)


def _pick(targets: list[list[str]], rows: list[int], seed: int, step: int) -> list[str]:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    picks = torch.randint(0, 1 << 30, (len(rows),), generator=generator).tolist()
    return [targets[r][p % len(targets[r])] for r, p in zip(rows, picks)]


def train_vlm(encoder: nn.Module, world: Path, out: Path, recipe: VLMRecipe, resume: bool,
              command: list[str]) -> dict[str, Any]:
    torch.manual_seed(recipe.seed)
    torch.use_deterministic_algorithms(True)
    out.mkdir(parents=True, exist_ok=True)
    data = read_examples(world, recipe)
    encoder.eval().requires_grad_(False)
    projector, lm = build_parts(encoder.visual.transformer.width, recipe.seed)
    vlm = assemble(encoder, projector, lm)
    trainable = nn.ModuleDict({"projector": projector, "lm": lm})
    optimizer = torch.optim.AdamW(param_groups(trainable, recipe.wd), lr=recipe.lr, betas=(0.9, 0.98))
    batches = StepBatches(torch.arange(len(data.prompts)), recipe.batch_size, recipe.seed)

    def loss(step: int) -> Tensor:
        rows = batches(step).tolist()
        x = data.images[data.image_of[rows]].float() / 255
        return vlm.loss(x, [data.prompts[r] for r in rows], _pick(data.targets, rows, recipe.seed, step)).mean()

    base = encoder.provenance
    identity = {"recipe": asdict(recipe), "base": base.sha256, "data": f"{len(data.prompts)} examples"}
    trainable.train()
    job = loop.Job("train tiny-llava", out, recipe.steps, recipe.lr, recipe.warmup, recipe.checkpoint_every,
                   trainable, optimizer, identity, loss, max_grad_norm=1.0)
    outcome = loop.run(job, resume)
    save_parts(out / WEIGHTS_FILE, projector, lm, {"base": base.source, "architecture": base.architecture})
    card = {"name": "tiny-llava", "method": "vlm", "recipe": asdict(recipe), "command": " ".join(command),
            "vision": {"name": base.name, "source": base.source, "sha256": base.sha256, "frozen": True},
            "data": f"tiny world train splits of every tiny VLM task, textvqa x{recipe.textvqa_repeats} "
                    f"({len(data.prompts)} examples, {len(data.images)} images)",
            "versions": versions(), "git_commit": git_commit(),
            "train_seconds_this_session": round(outcome.seconds, 1)}
    write_card(out / CARD_FILE, card)
    return card


def tiny_vlm_card_scores(encoder: nn.Module, weights: Path, world: Path) -> dict[str, Any]:
    """Clean CIDEr / VQA accuracy of saved weights on every tiny VLM task, as `bench run` measures
    them, next to the trivial baselines: the most frequent training caption / answer for everything."""
    from bench.tiny.suite import training_tasks

    vlm = load_tiny_llava(encoder, weights, "cpu")
    suite = get_suite("tiny")
    # The most frequent training target of each task (every reference counts for captions)
    constant = {name: Counter(t for targets in task.training_targets(task.ids) for t in targets).most_common(1)[0][0]
                for name, task in training_tasks(world).items()}
    clean, baselines = {}, {}
    for name in suite.vlm_datasets.names():
        task = load_task(suite, name, None)
        clean[f"{name} {task.metric}"] = round(clean_vlm_score(vlm, task), 2)
        baselines[f"{name} {task.metric}"] = {"output": constant[name],
                                               "score": round(constant_output_score(task, constant[name]), 2)}
    return {"clean": clean, "trivial_baselines": baselines, "weights_sha256": weights_sha256(weights)}
