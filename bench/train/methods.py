"""The three adversarial fine-tuning methods, each as (inner attack loss, outer training loss).

The inner attack (bench/train/inner.py: RobustVLM's sign-momentum PGD or the project's PGD)
maximises the method's own loss (or FARE's L2, InnerL2) through the Objective interface; the
outer loss is what the optimiser minimises on the found x'.

* FARE (Schlarmann et al.): ||f(x') - f0(x)||^2 on unnormalised embeddings, summed over
  dimensions, mean over the batch; f0 is the frozen original vision tower.
* TeCoA (Mao et al.): cross-entropy of 100 * cos(f(x'), class-text weights).
* Sim-CLIP (Hossain & Imteaj): negative cosine D between the adversarial embedding and an
  anchor. `shared` is the paper: a siamese pass of x and x' through the encoder being
  trained, 1/2 D(p', sg(p)) + 1/2 D(p, sg(p')). `script` is the public script
  (speedlab-git/SimCLIP train/adversarial_training_simclip.py, `train_one_epoch`): the same
  two-term form with the frozen original's embedding f0(x) in place of p, 1/2 D(f(x'), sg(f0(x)))
  + 1/2 D(f0(x), sg(f(x'))); f0(x) is a constant there, so the second term carries no gradient:
  the value is D(f(x'), f0(x)) and the gradient half of its. `frozen` is D(f(x'), f0(x)) itself
  (the tiny zoo's: same value, twice the gradient; under AdamW that is the script's update with
  AdamW's eps halved).
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attacks.objectives import Evaluation
from benchutil.registry import Registry

LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class Batch:
    x: Tensor  # [n, 3, H, W] in [0, 1]
    labels: Tensor  # [n] global class index
    allowed: Tensor  # [n, C] bool: the classes of each sample's own dataset


class ZeroShotHead:
    """100 * cos(embedding, class weight), other datasets' classes masked to -inf."""

    def __init__(self, weights: Tensor) -> None:
        self.weights = weights  # [C, d], rows normalised

    def logits(self, embedding: Tensor, allowed: Tensor) -> Tensor:
        z = LOGIT_SCALE * F.normalize(embedding.float(), dim=-1) @ self.weights.T
        return z.masked_fill(~allowed, float("-inf"))


def negative_cosine(a: Tensor, b: Tensor) -> Tensor:
    return -F.cosine_similarity(a.float(), b.float(), dim=-1)


class Method(Protocol):
    name: str

    def reference(self, tower: nn.Module, batch: Batch) -> Tensor | None:
        """What the attack and the loss compare against, computed once per batch without grad."""

    def attack_loss(self, embedding: Tensor, batch: Batch, reference: Tensor | None, idx: Tensor) -> Tensor:
        """Per-sample loss of the adversarial embeddings of rows idx (the attacker maximises it)."""

    def train_loss(self, tower: nn.Module, batch: Batch, x_adv: Tensor, reference: Tensor | None) -> Tensor:
        """Scalar loss to minimise; `tower` is the (possibly DDP-wrapped) model being trained."""


class Fare:
    name = "fare"

    def __init__(self, anchor: nn.Module) -> None:
        self.anchor = anchor

    def reference(self, tower: nn.Module, batch: Batch) -> Tensor:
        with torch.no_grad():
            return self.anchor(batch.x).float()

    def attack_loss(self, embedding: Tensor, batch: Batch, reference: Tensor | None, idx: Tensor) -> Tensor:
        assert reference is not None
        return (embedding.float() - reference[idx]).pow(2).sum(dim=-1)

    def train_loss(self, tower: nn.Module, batch: Batch, x_adv: Tensor, reference: Tensor | None) -> Tensor:
        return self.attack_loss(tower(x_adv), batch, reference, _all(batch)).mean()


class Tecoa:
    name = "tecoa"

    def __init__(self, head: ZeroShotHead) -> None:
        self.head = head

    def reference(self, tower: nn.Module, batch: Batch) -> None:
        return None

    def attack_loss(self, embedding: Tensor, batch: Batch, reference: Tensor | None, idx: Tensor) -> Tensor:
        return F.cross_entropy(self.head.logits(embedding, batch.allowed[idx]), batch.labels[idx], reduction="none")

    def train_loss(self, tower: nn.Module, batch: Batch, x_adv: Tensor, reference: Tensor | None) -> Tensor:
        return self.attack_loss(tower(x_adv), batch, reference, _all(batch)).mean()


class SimClip:
    name = "sim-clip"

    def __init__(self, anchor: nn.Module | None, script: bool = False) -> None:
        self.anchor = anchor  # None: the paper's shared siamese encoder
        self.script = script  # the public script's two-term loss on the frozen anchor

    def reference(self, tower: nn.Module, batch: Batch) -> Tensor:
        with torch.no_grad():
            return (self.anchor or tower)(batch.x).float()

    def attack_loss(self, embedding: Tensor, batch: Batch, reference: Tensor | None, idx: Tensor) -> Tensor:
        assert reference is not None
        return negative_cosine(embedding, reference[idx])

    def train_loss(self, tower: nn.Module, batch: Batch, x_adv: Tensor, reference: Tensor | None) -> Tensor:
        if self.anchor is not None:
            assert reference is not None
            adv = tower(x_adv)
            if self.script:  # the script's halves, in its order; the second has no gradient path
                return negative_cosine(adv, reference).mean() / 2 + negative_cosine(reference, adv.detach()).mean() / 2
            return negative_cosine(adv, reference).mean()
        # One forward for both views: DDP needs every trained output in a single pass.
        clean, adv = tower(torch.cat([batch.x, x_adv])).chunk(2)
        return 0.5 * negative_cosine(adv, clean.detach()).mean() + 0.5 * negative_cosine(clean, adv.detach()).mean()


class InnerL2:
    """A method whose inner attack maximises FARE's L2 distance to the reference embedding
    instead of its own loss (the Sim-CLIP script's --attack_loss l2); training is unchanged."""

    def __init__(self, method: Method) -> None:
        self.method, self.name = method, method.name

    def reference(self, tower: nn.Module, batch: Batch) -> Tensor | None:
        reference = self.method.reference(tower, batch)
        if reference is None:  # TeCoA compares with labels, not an embedding: its clean embedding
            with torch.no_grad():
                reference = tower(batch.x).float()
        return reference

    def attack_loss(self, embedding: Tensor, batch: Batch, reference: Tensor | None, idx: Tensor) -> Tensor:
        assert reference is not None
        return (embedding.float() - reference[idx]).pow(2).sum(dim=-1)

    def train_loss(self, tower: nn.Module, batch: Batch, x_adv: Tensor, reference: Tensor | None) -> Tensor:
        own = None if isinstance(self.method, Tecoa) else reference
        return self.method.train_loss(tower, batch, x_adv, own)


def _all(batch: Batch) -> Tensor:
    return torch.arange(batch.x.shape[0], device=batch.x.device)


class MethodObjective:
    """The inner attack's objective: the method's loss of the tower's embedding of x'.

    Success is never reached: adversarial training wants every sample's final iterate.
    """

    def __init__(self, method: Method, tower: nn.Module, batch: Batch, reference: Tensor | None,
                 autocast: Callable[[], AbstractContextManager]) -> None:
        self.method, self.tower, self.batch, self.reference, self.autocast = method, tower, batch, reference, autocast

    def __call__(self, x: Tensor, idx: Tensor) -> Evaluation:
        with self.autocast():
            embedding = self.tower(x)
        loss = self.method.attack_loss(embedding, self.batch, self.reference, idx)
        return Evaluation(loss=loss, success=torch.zeros_like(loss, dtype=torch.bool))


@dataclass(frozen=True)
class MethodSpec:
    """Everything `bench train` knows of a robust method, in one place."""

    build: Callable[[str, nn.Module | None, ZeroShotHead], Method]  # (anchor, frozen tower, head) -> method
    needs_frozen: Callable[[str], bool]  # anchor -> whether a frozen copy of the original tower is kept
    defaults: dict[str, dict[str, Any]]  # per suite: steps, batch_size, lr, wd, warmup (flags override)


# The tiny zoo's recipe (every method); the paper's are the published ones (FARE / TeCoA:
# RobustVLM's README commands; Sim-CLIP: its README's / script's command, lr 1e-3 included).
# The tiny zoo was trained with the project's PGD, our optimiser and schedule, and the single-term
# frozen Sim-CLIP loss: its cards' commands retrain it bit for bit, so these stay its defaults.
TINY = {"steps": 250, "batch_size": 64, "lr": 1e-4, "wd": 1e-4, "warmup": 25, "save_dtype": "float16",
        "eval_every": 25, "inner_attack": "pgd", "schedule": "ours", "anchor": "frozen"}
# RobustVLM's recipe (README's FARE / TeCoA commands, train/adversarial_training_clip.py): torch's AdamW
# betas, decay on every parameter, its sign-momentum inner PGD, open_clip's cosine_lr stepped after
# each update (step 0 at the base lr); fp32 for every recipe unless --precision bf16.
PAPER = {"steps": 20000, "batch_size": 128, "lr": 1e-5, "wd": 1e-4, "warmup": 1400, "betas": (0.9, 0.999),
         "decay_all": True, "inner_attack": "robustvlm", "schedule": "robustvlm", "anchor": "frozen"}
ANCHORS = ("frozen", "script", "shared")

ROBUST_METHODS: Registry[MethodSpec] = Registry("method")
ROBUST_METHODS.add("fare", MethodSpec(lambda anchor, frozen, head: Fare(frozen), lambda anchor: True,
                                      {"tiny": TINY, "paper": PAPER}),
                   "FARE (Schlarmann et al. 2024): ||f(x') - f0(x)||^2 to the frozen original embedding")
ROBUST_METHODS.add("tecoa", MethodSpec(lambda anchor, frozen, head: Tecoa(head), lambda anchor: False,
                                       {"tiny": TINY, "paper": PAPER}),
                   "TeCoA (Mao et al. 2023): cross-entropy of the zero-shot head on x'")
ROBUST_METHODS.add("sim-clip",
                   MethodSpec(lambda anchor, frozen, head: SimClip(None if anchor == "shared" else frozen,
                                                                   script=anchor == "script"),
                              lambda anchor: anchor != "shared",
                              # the script's --steps 10000 --batch_size 64 --lr 1e-3 --wd 1e-5 --attack_loss l2
                              # and its loss (bash/training/simclip_train.sh, the README's command)
                              {"tiny": TINY, "paper": {**PAPER, "steps": 10000, "batch_size": 64, "lr": 1e-3,
                                                       "wd": 1e-5,
                                                       "inner_loss": "l2", "anchor": "script"}}),
                   "Sim-CLIP (Hossain & Imteaj 2024): negative cosine to the frozen original (public script) or "
                   "through the shared encoder (paper)")


def make_method(name: str, anchor: str, frozen_tower: nn.Module | None, head: ZeroShotHead) -> Method:
    return ROBUST_METHODS.get(name).value.build(anchor, frozen_tower, head)
