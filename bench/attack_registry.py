"""The attacks `bench run --attack` knows: ours from attacks/, plus adapters to the references.

Every entry maps (victim, x, y, settings) to per-sample robustness, the adversarial
points, and which attack broke each sample; the runner needs nothing else.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from attacks import check_valid, cw, worst_case
from attacks.classify import top_targets
from bench.errors import BenchError, unknown
from bench.registry import Registry


@dataclass(frozen=True)
class AttackSettings:
    eps: float
    steps: int
    seed: int
    norm: str = "linf"
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    x_adv: Tensor
    robust: Tensor  # [N] bool: correct on x and on x_adv
    winner: list[str | None]  # per sample: the attack that broke it, "clean", or None
    clean_pred: Tensor  # [N] predictions on x
    adv_pred: Tensor  # [N] predictions on x_adv


Runner = Callable[[nn.Module, Tensor, Tensor, AttackSettings], Outcome]
ATTACKS: Registry[Runner] = Registry("attack")


def _predict(model: nn.Module, x: Tensor) -> Tensor:
    with torch.no_grad():
        return model(x).argmax(dim=1)


def outcome_from_points(model: nn.Module, x: Tensor, y: Tensor, x_adv: Tensor, name: str) -> Outcome:
    """Score adversarial points: robust = right on x and on x_adv (x is kept where x was wrong)."""
    clean_pred = _predict(model, x)
    clean_ok = clean_pred == y
    x_adv = torch.where(clean_ok.view(-1, *[1] * (x.dim() - 1)), x_adv, x)
    adv_pred = _predict(model, x_adv)
    robust = clean_ok & (adv_pred == y)
    winner = [None if r else ("clean" if not c else name) for r, c in zip(robust.tolist(), clean_ok.tolist())]
    return Outcome(x_adv, robust, winner, clean_pred, adv_pred)


def _ensemble(members: list[str]) -> Runner:
    def run(model: nn.Module, x: Tensor, y: Tensor, s: AttackSettings) -> Outcome:
        r = worst_case(model, x, y, attacks=members, eps=s.eps, norm=s.norm, steps=s.steps, seed=s.seed)
        return Outcome(r.x_adv, r.robust, r.winner, _predict(model, x), _predict(model, r.x_adv))

    return run


ATTACKS.add("none", lambda m, x, y, s: outcome_from_points(m, x, y, x, "none"), "no attack: clean accuracy")
ATTACKS.add("apgd", _ensemble(["apgd-ce"]), "APGD-CE (Croce & Hein 2020), this project's attacks/apgd.py")
ATTACKS.add("pgd", _ensemble(["pgd"]), "PGD with random start (Madry et al. 2018), attacks/pgd.py")
ATTACKS.add("aa", _ensemble(["apgd-ce", "apgd-t"]),
            "worst case of APGD-CE + APGD-T (9 targets): the RobustVLM zero-shot protocol")


@ATTACKS.register("cw", "targeted CW margin (Carlini & Wagner 2017) towards the top non-true class, L-inf")
def _cw(model: nn.Module, x: Tensor, y: Tensor, s: AttackSettings) -> Outcome:
    with torch.no_grad():
        target = top_targets(model(x).float(), y, 1)[:, 0]
    x_adv = cw(model, x, target, eps=s.eps, norm=s.norm, steps=s.steps, seed=s.seed, **s.args)
    return outcome_from_points(model, x, y, x_adv, "cw")


@ATTACKS.register("autoattack", "pyautoattack standard: APGD-CE, APGD-T, FAB-T, Square (RobustBench protocol)")
def _autoattack(model: nn.Module, x: Tensor, y: Tensor, s: AttackSettings) -> Outcome:
    try:
        from pyautoattack import AutoAttack
    except ImportError:
        raise BenchError("--attack autoattack needs pyautoattack: pip install pyautoattack") from None
    norm = {"linf": "Linf", "l2": "L2"}[s.norm]
    with torch.no_grad():
        n_classes = model(x[:1]).shape[1]
    if n_classes < 4:
        raise BenchError(f"--attack autoattack needs at least 4 classes (targeted DLR); this task has {n_classes}; "
                         "use --attack aa")
    adversary = AutoAttack(model, norm=norm, eps=s.eps, version="standard", seed=s.seed, device=x.device)
    # The standard version assumes >= 10 classes: at most classes - 1 targets.
    adversary.apgd_targeted.n_target_classes = min(9, n_classes - 1)
    adversary.fab.n_target_classes = min(9, n_classes - 1)
    x_adv = adversary.run_standard_evaluation(x, y, batch_size=len(y))[0]
    check_valid(x_adv, x, s.eps, s.norm, "autoattack")  # type: ignore[arg-type]
    return outcome_from_points(model, x, y, x_adv, "autoattack")


def torchattacks_runner(class_name: str) -> Runner:
    try:
        import torchattacks
    except ImportError:
        raise BenchError("--attack torchattacks:<Name> needs torchattacks: pip install torchattacks") from None
    classes = [n for n in dir(torchattacks) if isinstance(getattr(torchattacks, n), type)]
    if class_name not in classes:
        raise unknown("torchattacks attack", class_name, classes)
    cls = getattr(torchattacks, class_name)
    accepted = inspect.signature(cls.__init__).parameters

    def run(model: nn.Module, x: Tensor, y: Tensor, s: AttackSettings) -> Outcome:
        kwargs = {k: v for k, v in (("eps", s.eps), ("steps", s.steps), ("seed", s.seed)) if k in accepted}
        kwargs.update(s.args)
        wrong = [k for k in kwargs if k not in accepted]
        if wrong:
            raise BenchError(f"torchattacks.{class_name} has no argument {wrong[0]!r}; it takes "
                             f"{', '.join(p for p in accepted if p not in ('self', 'model'))}")
        torch.manual_seed(s.seed)  # torchattacks draws from the global generator
        x_adv = cls(model, **kwargs)(x, y)
        check_valid(x_adv, x, s.eps if "eps" in accepted else None, s.norm, f"torchattacks:{class_name}")  # type: ignore[arg-type]
        return outcome_from_points(model, x, y, x_adv, f"torchattacks:{class_name}")

    return run


def get_attack(name: str) -> Runner:
    if name.startswith("torchattacks:"):
        return torchattacks_runner(name.split(":", 1)[1])
    return ATTACKS.get(name).value
