"""The optimiser cores: name -> a function optimising any Objective, and the options it takes.

A core has the signature of `run_apgd` / `run_pgd`:
    core(objective, x, *, eps, norm, steps, seed, stop_on_success, active, name, **options)
and registers itself beside its code with `@register_core("<name>")`. The tasks call cores
only through this table, so a new optimiser is one new file in attacks/ (found on first
lookup) plus the entries of attacks/table.py that use it.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# What the runner and the tasks pass themselves: never a user option.
SUPPLIED = frozenset({"objective", "x", "eps", "norm", "steps", "seed", "stop_on_success", "active", "groups",
                      "name", "model", "target", "y", "x_init"})


@dataclass(frozen=True)
class Core:
    run: Callable[..., Any]  # (objective, x, *, eps, norm, steps, seed, ...) -> AttackResult
    options: dict[str, type]  # what --attack-args may set, with types


_CORES: dict[str, Core] = {}
_discovered = False


def keyword_options(function: Callable[..., Any]) -> dict[str, type]:
    """A function's optional arguments and their types, read off its signature."""
    out: dict[str, type] = {}
    for name, p in inspect.signature(function).parameters.items():
        if name in SUPPLIED or p.default is inspect.Parameter.empty:
            continue
        out[name] = float if p.default is None else type(p.default)  # None defaults are optional numbers
    return out


def register_core(name: str, options_of: Callable[..., Any] | None = None) -> Callable[[Callable[..., Any]], Any]:
    """Register an objective-level optimiser; its options come from its own signature, or from
    `options_of`'s when the user-facing function differs (cw: APGD on the margin, options of cw())."""
    def add(run: Callable[..., Any]) -> Callable[..., Any]:
        if name in _CORES:
            raise ValueError(f"attack core {name!r} is registered twice")
        _CORES[name] = Core(run, keyword_options(options_of or run))
        return run

    return add


def core(name: str) -> Core:
    """A registered core (every module of attacks/ is imported on the first lookup)."""
    global _discovered
    if not _discovered:
        import attacks as package

        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
        _discovered = True
    if name not in _CORES:
        raise KeyError(f"no attack core {name!r}; registered: {', '.join(sorted(_CORES))}")
    return _CORES[name]
