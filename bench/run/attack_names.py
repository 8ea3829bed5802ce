"""What `--attack NAME` resolves to: an entry of attacks.table, or a reference implementation.

The references (pyautoattack's AutoAttack, any torchattacks class) run whole on a
classifier, outside the Objective seam; they exist to compare against. Every point they
return is checked against the run's eps ball like any other (tasks.base.core_records).
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor, nn

from attacks.core_registry import core
from attacks.ensemble import ENSEMBLE
from attacks.table import ALIASES, TABLE, AttackEntry, check_arguments
from benchutil.errors import BenchError, unknown
from benchutil.plugins import Plugin, load_on_first_use
from benchutil.registry import BUILT_IN, Registry

TORCHATTACKS = "torchattacks:"


def _autoattack(model: nn.Module, x: Tensor, y: Tensor, eps: float, norm: str, steps: int, seed: int,
                args: dict[str, Any]) -> Tensor:
    try:
        from pyautoattack import AutoAttack
    except ImportError:
        raise BenchError("--attack autoattack needs pyautoattack: pip install pyautoattack") from None
    with torch.no_grad():
        n_classes = model(x[:1]).shape[1]
    if n_classes < 4:
        raise BenchError(f"--attack autoattack needs at least 4 classes (targeted DLR); this task has {n_classes}; "
                         "use --attack aa")
    adversary = AutoAttack(model, norm={"linf": "Linf", "l2": "L2"}[norm], eps=eps, version="standard", seed=seed,
                           device=x.device)
    # The standard version assumes >= 10 classes: at most classes - 1 targets.
    adversary.apgd_targeted.n_target_classes = min(9, n_classes - 1)
    adversary.fab.n_target_classes = min(9, n_classes - 1)
    return adversary.run_standard_evaluation(x, y, batch_size=len(y))[0]


AUTOATTACK = AttackEntry("autoattack", (), "pyautoattack standard: APGD-CE, APGD-T, FAB-T, Square (RobustBench "
                         "protocol); classifiers only", external=_autoattack, external_parameters={})


def _torchattacks_entry(class_name: str) -> AttackEntry:
    try:
        import torchattacks
    except ImportError:
        raise BenchError("--attack torchattacks:<Name> needs torchattacks: pip install torchattacks") from None
    classes = [n for n in dir(torchattacks) if isinstance(getattr(torchattacks, n), type)]
    if class_name not in classes:
        raise unknown("torchattacks attack", class_name, classes)
    cls = getattr(torchattacks, class_name)
    accepted = inspect.signature(cls.__init__).parameters
    supplied = {"self", "model", "eps", "steps", "seed"}
    # Its defaults do not tell ints from floats reliably (CW's c=1): any finite number is taken.
    parameters = {k: float if p.default is None or type(p.default) in (int, float) else type(p.default)
                  for k, p in accepted.items() if k not in supplied and p.default is not inspect.Parameter.empty}

    def run(model: nn.Module, x: Tensor, y: Tensor, eps: float, norm: str, steps: int, seed: int,
            args: dict[str, Any]) -> Tensor:
        kwargs = {k: v for k, v in (("eps", eps), ("steps", steps), ("seed", seed)) if k in accepted}
        torch.manual_seed(seed)  # torchattacks draws from the global generator
        return cls(model, **kwargs, **args)(x, y)

    return AttackEntry(f"{TORCHATTACKS}{class_name}", (), f"torchattacks.{class_name} (reference; classifiers only)",
                       external=run, external_parameters=parameters)


GOALS = ("ce", "dlr", "cw")  # the losses a Member may name (attacks.table)


def _add_plugin_attack(entry: Any, plugin: Plugin) -> None:
    """A `robust_vlm_bench.attacks` entry point names an AttackEntry; its cores and losses are checked
    now, so a broken plugin is refused by name before any run starts."""
    if not isinstance(entry, AttackEntry):
        raise plugin.error(f"names an object of type {type(entry).__name__!r}, not an attacks.table.AttackEntry",
                           "point it at one")
    if entry.name.startswith(TORCHATTACKS):
        raise plugin.error(f"names its attack {entry.name!r}: the {TORCHATTACKS} prefix is reserved", "rename it")
    built_in_members = {m.name: m for e in TABLE.values() for m in e.members}
    for member in entry.members:
        # On classifiers a member named like one of attacks.ensemble's routines runs that routine.
        if member.name in ENSEMBLE and built_in_members.get(member.name) != member:
            raise plugin.error(f"names a member {member.name!r}, the name of a built-in routine that would run "
                               "instead of its core", "rename the member")
        if member.loss not in GOALS:
            raise plugin.error(f"gives member {member.name!r} the loss {member.loss!r}",
                               f"use one of {', '.join(GOALS)}")
        try:
            core(member.core)
        except KeyError:
            raise plugin.error(f"uses the attack core {member.core!r}, which nothing registers",
                               "register it with @register_core in its module, or use apgd, pgd or cw") from None
    ATTACKS.add(entry.name, entry, entry.about)


def _attacks() -> Registry[AttackEntry]:
    """attacks.table's entries and AutoAttack, then (on first use) every installed plugin's."""
    registry: Registry[AttackEntry] = Registry("attack")
    for entry in (*TABLE.values(), AUTOATTACK):
        registry.add(entry.name, entry, entry.about, tuple(a for a, target in ALIASES.items() if target == entry.name))
    load_on_first_use("attacks", [registry], _add_plugin_attack)
    return registry


ATTACKS = _attacks()


def resolve_attack(name: str) -> AttackEntry:
    """The entry `--attack name` means; an unknown name is one line with the closest match."""
    if name.startswith(TORCHATTACKS):
        return _torchattacks_entry(name.removeprefix(TORCHATTACKS))
    return ATTACKS.get(name).value


def checked_arguments(entry: AttackEntry, args: dict[str, Any]) -> dict[str, Any]:
    try:
        return check_arguments(entry, args)
    except ValueError as err:
        raise BenchError(str(err)) from None


def listing() -> list[tuple[str, str, str]]:
    """(name, what it is, where it comes from) for `bench list attacks`."""
    rows = [(e.name, e.provenance + "".join(f" (alias: {a})" for a in ATTACKS.aliases_of(e.name)), e.origin)
            for e in ATTACKS]
    return rows + [(f"{TORCHATTACKS}<Name>", "any torchattacks attack by class name; arguments via --attack-args "
                    "(classifiers only)", BUILT_IN)]
