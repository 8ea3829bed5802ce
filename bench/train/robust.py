"""Adversarial fine-tuning of a CLIP vision tower: Sim-CLIP, FARE, TeCoA (one loop, three losses).

Per step: the global batch of step k (a pure function of the seed) -> this rank's slice ->
the inner attack (bench/train/inner.py: RobustVLM's sign-momentum PGD or the project's PGD;
random start, every sample runs all steps) on the method's loss -> the method's loss on x' ->
AdamW with the lr of step k (bench/train/optim.py). fp32 unless the recipe asks for bf16
autocast. Exact resume from (weights, optimiser, step): data order and attack seeds depend on
the step only.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from attacks.core import attack_mode
from attacks.objectives import Evaluation
from attacks.pgd import run_pgd
from bench.encoders.base import Encoder
from bench.run.environment import git_commit, versions
from bench.train import distributed, loop
from bench.train.checkpoint import save_weights, write_card
from bench.train.images import (
    ImageRows,
    LabelledImages,
    RankSampler,
    StepBatches,
    split_holdout,
)
from bench.train.inner import momentum_pgd, uniform_start
from bench.train.methods import (
    ROBUST_METHODS,
    Batch,
    InnerL2,
    Method,
    MethodObjective,
    ZeroShotHead,
)
from bench.train.optim import param_groups
from tasks.zeroshot import class_weights

WEIGHTS_FILE = "vision.safetensors"
CARD_FILE = "card.json"


@dataclass(frozen=True)
class RobustRecipe:
    method: str
    eps: float
    steps: int
    batch_size: int
    lr: float
    wd: float
    warmup: int
    inner_steps: int = 10
    inner_step_size: float = 1 / 255
    anchor: str = "frozen"  # Sim-CLIP only: frozen | script | shared (bench/train/methods.py)
    seed: int = 0
    checkpoint_every: int = 250
    eval_every: int = 50
    holdout: int = 64
    grad_checkpointing: bool = False
    save_dtype: str = "float32"
    # The optimiser: ours (betas 0.9/0.95, no decay on norms, biases, embeddings) or RobustVLM's
    # (torch's AdamW betas 0.9/0.999, decay on every parameter): the paper presets use the latter.
    betas: tuple[float, float] = (0.9, 0.95)
    decay_all: bool = False
    inner_loss: str = "method"  # the inner attack's loss: the method's own, or "l2" (FARE's; Sim-CLIP's script)
    # The inner attack: "robustvlm" (RobustVLM's train/pgd_train.py, sign momentum `inner_momentum`)
    # or "pgd" (the project's; the tiny zoo's). The dataclass defaults are the tiny zoo's recipe.
    inner_attack: str = "pgd"
    inner_momentum: float = 0.9
    schedule: str = "ours"  # "robustvlm": step 0 at the base lr, as RobustVLM's scheduler runs (optim.py)
    precision: str = "fp32"  # "bf16": bf16 autocast for every forward (the reference trains in fp32)


class VisionTower(nn.Module):
    """Pixels in [0,1] -> unnormalised image embedding: the part that is fine-tuned."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.visual = encoder.clip.visual
        self.register_buffer("mean", encoder.mean.clone(), persistent=False)
        self.register_buffer("std", encoder.std.clone(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.visual((x - self.mean) / self.std)


@dataclass
class Monitor:
    """Held-out zero-shot accuracy, clean and under PGD (CE) at the training eps."""

    clean_accuracy: float = float("nan")
    robust_accuracy: float = float("nan")
    clean_adv_cosine: float = float("nan")


PRECISIONS = ("fp32", "bf16")


def autocast_for(device: torch.device, precision: str) -> Callable[[], AbstractContextManager]:
    """The forwards' precision: "fp32" (no autocast) or "bf16" (autocast, on CUDA and on a CPU);
    `bench train` passes its recipe's (fp32 unless --precision bf16)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
    enabled = precision == "bf16"
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def _head(encoder: Encoder, data: LabelledImages, device: torch.device) -> tuple[ZeroShotHead, Tensor]:
    """Class weights of every dataset (from the base's text tower) and each dataset's class mask."""
    weights = [class_weights(encoder, d.classnames, d.templates) for d in data.datasets]
    allowed = torch.zeros(len(weights), sum(len(w) for w in weights), dtype=torch.bool)
    for i, (offset, w) in enumerate(zip(data.offsets, weights)):
        allowed[i, offset:offset + len(w)] = True
    return ZeroShotHead(torch.cat(weights).to(device)), allowed.to(device)


def _held_out(data: LabelledImages, rows: Tensor, size: int, allowed: Tensor, device: torch.device) -> Batch:
    images = ImageRows(data, size)
    items = [images[int(r)] for r in rows]
    x = torch.stack([i[0] for i in items]).to(device)
    labels = torch.tensor([i[1] for i in items], device=device)
    return Batch(x, labels, allowed[torch.tensor([i[2] for i in items], device=device)])


class HeldOutObjective:
    """Untargeted CE on the zero-shot head; success = misclassified (rows idx of the batch)."""

    def __init__(self, tower: nn.Module, head: ZeroShotHead, held: Batch,
                 autocast: Callable[[], AbstractContextManager]) -> None:
        self.tower, self.head, self.held, self.autocast = tower, head, held, autocast

    def logits(self, x: Tensor, idx: Tensor) -> Tensor:
        with self.autocast():  # float32 logits: CPU autocast leaves them (and their CE) in bf16
            return self.head.logits(self.tower(x), self.held.allowed[idx]).float()

    def __call__(self, x: Tensor, idx: Tensor) -> Evaluation:
        z, labels = self.logits(x, idx), self.held.labels[idx]
        return Evaluation(F.cross_entropy(z, labels, reduction="none"), (z.argmax(1) != labels).detach())


def _monitor(tower: nn.Module, head: ZeroShotHead, held: Batch, recipe: RobustRecipe,
             autocast: Callable[[], AbstractContextManager]) -> Monitor:
    objective = HeldOutObjective(tower, head, held, autocast)
    everything = torch.arange(held.x.shape[0], device=held.x.device)
    with attack_mode(tower):
        with torch.no_grad():
            clean_correct = objective.logits(held.x, everything).argmax(1) == held.labels
        attack = run_pgd(objective, held.x, eps=recipe.eps, steps=recipe.inner_steps,
                         step_size=recipe.inner_step_size, seed=recipe.seed, name="held-out pgd")
        with torch.no_grad(), autocast():
            cosine = F.cosine_similarity(tower(attack.x_adv).float(), tower(held.x).float(), dim=-1).mean()
    robust = clean_correct & ~attack.success
    return Monitor(clean_correct.float().mean().item(), robust.float().mean().item(), cosine.item())


def _attack_seed(seed: int, step: int, rank: int) -> int:
    return (seed * 1_000_003 + step) * 1_009 + rank


def inner_attack(method: Method, tower: nn.Module, batch: Batch, reference: Tensor | None, recipe: RobustRecipe,
                 seed: int, autocast: Callable[[], AbstractContextManager]) -> Tensor:
    """x' of the recipe's inner attack on the method's attack loss: RobustVLM's sign-momentum PGD
    on the batch-mean loss, or the project's PGD (bench/train/inner.py)."""
    with attack_mode(tower):
        objective = MethodObjective(method, tower, batch, reference, autocast)
        if recipe.inner_attack == "robustvlm":
            every = torch.arange(batch.x.shape[0], device=batch.x.device)
            return momentum_pgd(lambda x: objective(x, every).loss.mean(), batch.x,
                                uniform_start(batch.x, recipe.eps, seed), eps=recipe.eps, steps=recipe.inner_steps,
                                step_size=recipe.inner_step_size, momentum=recipe.inner_momentum)
        return run_pgd(objective, batch.x, eps=recipe.eps, steps=recipe.inner_steps,
                       step_size=recipe.inner_step_size, seed=seed, stop_on_success=False,
                       name=f"{recipe.method} inner pgd").x_adv


def adversarial_loss(method: Method, tower: nn.Module, trained: nn.Module, batch: Batch, recipe: RobustRecipe,
                     seed: int, autocast: Callable[[], AbstractContextManager]) -> Tensor:
    """The inner attack on the method's loss (through the unwrapped tower), then the method's loss
    at x' (through `trained`, the DDP wrapper when there is one): what the optimiser minimises."""
    reference = method.reference(tower, batch)
    x_adv = inner_attack(method, tower, batch, reference, recipe, seed, autocast)
    with autocast():
        return method.train_loss(trained, batch, x_adv, reference)


def train_robust(encoder: Encoder, base: dict[str, Any], data: LabelledImages, recipe: RobustRecipe,
                 out: Path, resume: bool, command: list[str], procs: distributed.Processes,
                 workers: int = 0) -> dict[str, Any] | None:
    """Fine-tune encoder's vision tower; rank 0 writes out/vision.safetensors + out/card.json."""
    device = procs.device
    if procs.main:
        out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(recipe.seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    autocast = autocast_for(device, recipe.precision)
    encoder = encoder.to(device).eval()
    encoder.requires_grad_(False)
    head, allowed = _head(encoder, data, device)  # the text tower is never trained
    tower = VisionTower(encoder)
    spec = ROBUST_METHODS.get(recipe.method).value
    frozen = copy.deepcopy(tower).requires_grad_(False) if spec.needs_frozen(recipe.anchor) else None
    tower.requires_grad_(True)
    if recipe.grad_checkpointing:
        encoder.clip.set_grad_checkpointing(True)
    method = spec.build(recipe.anchor, frozen, head)
    if recipe.inner_loss == "l2":
        method = InnerL2(method)
    optimizer = torch.optim.AdamW(param_groups(tower, recipe.wd, recipe.decay_all), lr=recipe.lr,
                                  betas=tuple(recipe.betas), eps=1e-8)
    trained = DistributedDataParallel(tower, device_ids=[device.index] if device.type == "cuda" else None) \
        if procs.world > 1 else tower
    train_rows, held_rows = split_holdout(len(data.rows), recipe.holdout, recipe.seed)
    held = _held_out(data, held_rows, encoder.image_size, allowed, device)
    batches = StepBatches(train_rows, recipe.batch_size, recipe.seed)
    stream: list[Iterator[Any]] = []  # the loader starts at the step training (re)starts at
    monitor = Monitor()

    def loss(step: int) -> Tensor:
        if not stream:
            stream.append(iter(DataLoader(ImageRows(data, encoder.image_size), num_workers=workers,
                                          batch_sampler=RankSampler(batches, step, recipe.steps, procs.rank,
                                                                    procs.world))))
        x, labels, dataset = next(stream[0])
        batch = Batch(x.to(device), labels.to(device), allowed[dataset.to(device)])
        return adversarial_loss(method, tower, trained, batch, recipe, _attack_seed(recipe.seed, step, procs.rank),
                                autocast)

    def status(done: int, value: float) -> dict[str, str]:
        nonlocal monitor
        if procs.main and (done % recipe.eval_every == 0 or done == recipe.steps):
            monitor = _monitor(tower, head, held, recipe, autocast)
        return {"held-out clean": f"{monitor.clean_accuracy:.3f}", "robust": f"{monitor.robust_accuracy:.3f}",
                "cos": f"{monitor.clean_adv_cosine:.3f}"}

    identity = {"recipe": asdict(recipe), "base": base["sha256"], "data": data.identity()}
    job = loop.Job(f"train {recipe.method} eps {recipe.eps:.4f}", out, recipe.steps, recipe.lr, recipe.warmup,
                   recipe.checkpoint_every, tower, optimizer, identity, loss, status=status, loss_format=".4f",
                   log_every=recipe.eval_every, main=procs.main, barrier=lambda: distributed.barrier(procs),
                   schedule=recipe.schedule)
    outcome = loop.run(job, resume)
    if not procs.main:
        return None
    if outcome.start == recipe.steps or monitor.clean_accuracy != monitor.clean_accuracy:  # nothing ran: measure
        monitor = _monitor(tower, head, held, recipe, autocast)
    metadata = {"architecture": base["architecture"], "base": base["source"],
                "quick_gelu": str(base["quick_gelu"]).lower(), "method": recipe.method, "eps": str(recipe.eps)}
    save_weights(out / WEIGHTS_FILE, tower.visual.state_dict(), metadata, getattr(torch, recipe.save_dtype))
    losses = outcome.losses
    card = {"method": recipe.method, "eps": recipe.eps, "base": base, "data": data.describe(),
            "class_names_and_templates": data.provenance(),
            "recipe": asdict(recipe), "command": " ".join(command), "processes": procs.world,
            "device": device.type, "bf16_autocast": recipe.precision == "bf16",
            "no_weight_decay_on": "nothing (every parameter)" if recipe.decay_all
            else "norms, biases, class and positional embeddings",
            "metrics": {"held_out_images": recipe.holdout, **asdict(monitor),
                        "mean_loss_last_50_steps": sum(losses) / len(losses) if losses else None},
            "versions": versions(), "git_commit": git_commit(),
            "train_seconds_this_session": round(outcome.seconds, 1)}
    write_card(out / CARD_FILE, card)
    return card
