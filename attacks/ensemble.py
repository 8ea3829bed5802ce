"""Worst case over an ensemble of attacks, per sample (the AutoAttack convention).

A sample is robust only if it is classified correctly and survives every attack. Each
attack runs only on the samples that are still robust, and every claimed success is
re-checked by a forward pass of the returned point, so the reported number never rests on
an attack's own bookkeeping. That pass is also the one whose prediction is recorded
(`adv_pred`): a sample's verdict and its recorded prediction cannot disagree, even where a
near-tie would flip between two forward passes of different batches. A returned point equal
to the clean image keeps the clean prediction: a sample is never "broken" at distance 0.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from attacks.apgd import apgd
from attacks.checks import check_eps, check_norm, check_steps
from attacks.classify import clean_pass, labels_for, top_targets
from attacks.core import attack_mode
from attacks.core_registry import core
from attacks.cw import cw
from attacks.guard import check_valid
from attacks.objectives import ClassifierObjective, Model
from attacks.pgd import pgd
from attacks.randomness import SampleSeeds
from attacks.table import Member


@dataclass(frozen=True)
class Settings:
    eps: float
    norm: str
    steps: int
    seed: int | SampleSeeds  # one for the batch, or one per sample (rows of x)
    max_rows: int | None  # APGD-T packs target runs into batches of up to this many rows
    args: dict[str, Any] = field(default_factory=dict)  # the core's optional arguments (attacks.table)


EnsembleMember = Callable[[Model, Tensor, Tensor, Settings], Tensor]


def _apgd_member(loss: str) -> EnsembleMember:
    def run(model: Model, x: Tensor, y: Tensor, s: Settings) -> Tensor:
        return apgd(model, x, y, s.eps, s.norm, s.steps, loss, seed=s.seed, max_rows=s.max_rows, **s.args)

    return run


def _apgd_t_member(model: Model, x: Tensor, y: Tensor, s: Settings) -> Tensor:
    """AutoAttack's APGD-T on min(9, classes - 1) targets. Targeted DLR needs 4 classes;
    with 3, targeted CE takes its place. With 2 classes the only target is the untargeted
    attack again: APGD-T is skipped, as RobustVLM's zero-shot evaluation runs APGD-CE alone
    on binary datasets (PCAM)."""
    with torch.no_grad():
        n_classes = model(x[:1]).shape[1]
    if n_classes < 3:
        return x.clone()
    loss = "dlr-targeted" if n_classes >= 4 else "ce-targeted"
    args = {"n_targets": min(9, n_classes - 1), **s.args}
    return apgd(model, x, y, s.eps, s.norm, s.steps, loss, seed=s.seed, max_rows=s.max_rows, **args)


def _pgd_member(model: Model, x: Tensor, y: Tensor, s: Settings) -> Tensor:
    return pgd(model, x, y, s.eps, s.norm, s.steps, seed=s.seed, **s.args)


def _cw_member(model: Model, x: Tensor, y: Tensor, s: Settings) -> Tensor:
    """Targeted CW towards the highest-scoring non-true class (the most reachable target)."""
    with torch.no_grad():
        target = top_targets(model(x).float(), y, 1)[:, 0]
    return cw(model, x, target, eps=s.eps, norm=s.norm, steps=s.steps, seed=s.seed, **s.args)


ENSEMBLE: dict[str, EnsembleMember] = {
    "apgd-ce": _apgd_member("ce"),
    "apgd-dlr": _apgd_member("dlr"),
    "apgd-t": _apgd_t_member,
    "apgd-ce-t": _apgd_member("ce-targeted"),
    "pgd": _pgd_member,
    "cw": _cw_member,
}

CLEAN = "clean"  # winner of a sample that was misclassified without any attack
_TOWARDS = {"ce": "ce-targeted", "dlr": "dlr-targeted", "cw": "cw-targeted"}


def _generic_member(member: Member) -> EnsembleMember:
    """Any registered core on the classifier's loss (targeted: towards the top non-true class),
    for table members without a dedicated classifier routine above."""
    def run(model: Model, x: Tensor, y: Tensor, s: Settings) -> Tensor:
        if member.targeted:
            with torch.no_grad():
                target = top_targets(model(x).float(), y, 1)[:, 0]
            objective = ClassifierObjective(model, y, _TOWARDS[member.loss], target)
        else:
            objective = ClassifierObjective(model, y, member.loss)
        return core(member.core).run(objective, x, eps=s.eps, norm=s.norm, steps=s.steps, seed=s.seed,
                                     name=member.name, **s.args).x_adv

    return run


def member_routine(attack: str | Member) -> tuple[str, EnsembleMember]:
    """(name, routine) of an ensemble member given by name or as a table Member."""
    name = attack if isinstance(attack, str) else attack.name
    if name in ENSEMBLE:
        return name, ENSEMBLE[name]
    if isinstance(attack, str):
        raise ValueError(f"unknown attack {attack!r} in attacks; allowed: {', '.join(ENSEMBLE)}")
    return name, _generic_member(attack)


@dataclass
class WorstCaseResult:
    robust: Tensor  # [N] bool: correct and unbroken by every attack
    x_adv: Tensor  # the successful point per sample, x where none
    winner: list[str | None]  # the attack that broke the sample, "clean", or None (robust)
    clean_correct: Tensor  # [N] bool
    clean_pred: Tensor  # [N] the class predicted on x, by the pass that decided clean_correct
    adv_pred: Tensor  # [N] the class predicted on x_adv, by the pass that decided robust
    x_best: Tensor | None = None  # per sample, the first attack's best point (where unbroken: its highest loss)

    @property
    def robust_accuracy(self) -> float:
        return float(self.robust.float().mean())


def worst_case(
    model: Model,
    x: Tensor,
    y: Tensor,
    attacks: Sequence[str | Member] = ("apgd-ce", "apgd-t"),
    eps: float = 4 / 255,
    norm: str = "linf",
    steps: int = 100,
    seed: int | Sequence[int] = 0,
    max_rows: int | None = None,
    args: dict[str, Any] | None = None,
    member_args: dict[str, dict[str, Any]] | None = None,
    attack_model: Model | None = None,
    final_stage: bool = False,
) -> WorstCaseResult:
    """Run `attacks` in order, each on the samples no earlier attack broke.

    max_rows: let APGD-T run several targets at once in batches of up to this many rows
    (e.g. len(x)); faster where the model's throughput grows with the batch (ViTs, GPUs),
    slower where it does not (small CNNs on a CPU: see benchmarks/attacks.py). `args` go to
    every member's core (checked by attacks.table.check_arguments); `member_args` adds
    defaults for single members under them (e.g. {"apgd-ce": {"restarts": 5}}). An empty
    `attacks` scores the clean images only. `attack_model` (e.g. the model in bf16,
    attacks.precision) is what the attacks differentiate; every claimed success is
    re-checked on `model`. `final_stage` (with an attack_model) ends with APGD-CE on `model`
    itself (float32) on the samples still unbroken, each starting from the first attack's
    best point: RobustVLM's fp32 stage after its fp16 attack. `seed` is one seed for the
    batch, or one per sample (then each sample's random starts are its own, whatever batch
    it is in).
    """
    norm_ = check_norm(norm)
    eps = check_eps(eps, norm_)
    check_steps(steps)
    if isinstance(attacks, str):
        raise ValueError(f"attacks must be a list of names from {', '.join(ENSEMBLE)}")
    routines = [member_routine(a) for a in attacks]
    seeds = seed if isinstance(seed, int) else SampleSeeds(seed)
    if isinstance(seeds, SampleSeeds) and len(seeds) != x.shape[0]:
        raise ValueError(f"{len(seeds)} sample seeds for a batch of {x.shape[0]}")
    with attack_mode(model), attack_mode(attack_model or model):
        clean = clean_pass(model, x)
        y = labels_for(y, clean, x)
        clean_pred = clean.logits.argmax(dim=1)
        clean_correct = clean_pred == y
        robust, adv_pred = clean_correct.clone(), clean_pred.clone()
        winner: list[str | None] = [None if ok else CLEAN for ok in clean_correct.tolist()]
        x_adv, x_best = x.clone(), None
        for name, routine in routines:
            idx = robust.nonzero()[:, 0]
            if idx.numel() == 0:
                break
            own = {**(member_args or {}).get(name, {}), **(args or {})}  # the caller's args win
            member_seed = seeds.rows(idx) if isinstance(seeds, SampleSeeds) else seeds
            candidate = routine(attack_model or model, x[idx], y[idx],
                                Settings(eps, norm_, steps, member_seed, max_rows, own))
            if x_best is None:
                x_best = x.clone()
                x_best[idx] = candidate
            _keep_broken(model, x, y, clean_pred, idx, candidate, name, robust, x_adv, adv_pred, winner)
        if final_stage and attack_model is not None and x_best is not None and bool(robust.any()):
            _fp32_stage(model, x, y, clean_pred, robust, x_adv, adv_pred, winner, x_best, eps, norm_, steps, seeds)
    check_valid(x_adv, x, eps, norm_, "worst_case")
    return WorstCaseResult(robust=robust, x_adv=x_adv, winner=winner, clean_correct=clean_correct,
                           clean_pred=clean_pred, adv_pred=adv_pred, x_best=x_best)


def predictions(model: Model, x: Tensor, candidate: Tensor, clean_pred: Tensor) -> Tensor:
    """The model's class for each candidate point; a point equal to its clean image keeps the
    clean prediction (a near-tie must not flip between two passes of the same image)."""
    with torch.no_grad():
        pred = model(candidate).argmax(dim=1)
    unchanged = (candidate == x).flatten(1).all(dim=1)
    return torch.where(unchanged, clean_pred, pred)


def _keep_broken(model: Model, x: Tensor, y: Tensor, clean_pred: Tensor, idx: Tensor, candidate: Tensor,
                 name: str, robust: Tensor, x_adv: Tensor, adv_pred: Tensor, winner: list[str | None]) -> None:
    """Record the candidates (of rows idx) that are misclassified, with the prediction that says
    so (updates robust, x_adv, adv_pred and winner in place)."""
    pred = predictions(model, x[idx], candidate, clean_pred[idx])
    broken = pred != y[idx]
    x_adv[idx[broken]] = candidate[broken]
    adv_pred[idx[broken]] = pred[broken]
    robust[idx[broken]] = False
    for i in idx[broken].tolist():
        winner[i] = name


FP32_STAGE = "apgd-ce:fp32"


def _fp32_stage(model: Model, x: Tensor, y: Tensor, clean_pred: Tensor, robust: Tensor, x_adv: Tensor,
                adv_pred: Tensor, winner: list[str | None], x_best: Tensor, eps: float, norm: str, steps: int,
                seeds: int | SampleSeeds) -> None:
    """APGD-CE on the float32 model from each unbroken sample's best low-precision point
    (updates robust, x_adv, adv_pred and winner in place)."""
    idx = robust.nonzero()[:, 0]
    own_seed = seeds.rows(idx) if isinstance(seeds, SampleSeeds) else seeds
    run = core("apgd").run(ClassifierObjective(model, y[idx], "ce"), x[idx], eps=eps, norm=norm, steps=steps,
                           seed=own_seed, x_init=x_best[idx], name=FP32_STAGE)
    _keep_broken(model, x, y, clean_pred, idx, run.x_adv, FP32_STAGE, robust, x_adv, adv_pred, winner)
