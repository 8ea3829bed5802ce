"""The text threat model: which attacks apply to which tasks, and under which norm.

Pixel tasks perturb images inside an L-inf or L2 ball; text tasks edit a sentence's characters,
at most k of them (`--norm levenshtein`, eps = k; Charmer, LEAF's attack). An attack table entry
says which it perturbs (its `domain`), a task says what it attacks (its `domain`, pixel unless
it says otherwise), and a run whose two disagree, or whose norm belongs to the other domain, is
refused in one line before any work (bench.api.evaluate checks every task of a command).
"""
from __future__ import annotations

from typing import Any

LEVENSHTEIN = "levenshtein"  # --norm: character edits (insertions, deletions, substitutions)
PIXEL, TEXT = "pixel", "text"
PIXEL_NORMS = ("linf", "l2")
NO_ATTACK = "none"  # the clean entry: every task takes it
TEXT_ATTACKS = "charmer"  # what a text task's refusals suggest


def domain_of(thing: Any) -> str:
    """What an attack entry perturbs or a task attacks: pixel unless it says text."""
    return getattr(thing, "domain", PIXEL) or PIXEL


def check_domain(task: Any, entry: Any, norm: str) -> None:
    """ValueError (one line) when the attack, its norm and the task do not belong together."""
    task_domain, attack_domain = domain_of(task), domain_of(entry)
    if task_domain == TEXT:
        if entry.name != NO_ATTACK and attack_domain != TEXT:
            raise ValueError(f"--attack {entry.name} perturbs pixels; {task.name} is a text task (its sentences are "
                             f"attacked): use --attack {TEXT_ATTACKS} --norm {LEVENSHTEIN}")
        if norm != LEVENSHTEIN:
            raise ValueError(f"--norm {norm} is a pixel threat model; {task.name} is a text task: use --norm "
                             f"{LEVENSHTEIN} (eps = k, the character edits allowed, e.g. --eps 0,1,2)")
        return
    if attack_domain == TEXT:
        raise ValueError(f"--attack {entry.name} edits text; {task.name} attacks images: use a pixel attack "
                         "(aa, apgd, pgd, cw, ...), or a text task (bench list tasks: tiny-text-...)")
    if norm == LEVENSHTEIN:
        raise ValueError(f"--norm {LEVENSHTEIN} counts character edits; {task.name} attacks images: use --norm "
                         f"{' or '.join(PIXEL_NORMS)}")


def edit_budget(eps: float) -> int:
    """k of a Levenshtein run (bench.run.eps admits whole numbers only under this norm)."""
    k = int(eps)
    if k != eps or k < 0:
        raise ValueError(f"a Levenshtein budget is a whole number of character edits, got {eps!r}")
    return k
