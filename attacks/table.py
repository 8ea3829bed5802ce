"""Every attack `--attack` can name, written once, at the optimiser level.

An entry is a list of members run in order, worst case per sample (AutoAttack's
convention; one member = a single attack). A member is an optimiser core on a *goal*: the
loss it maximises and whether it pushes towards other targets. Each task kind turns a goal
into its own Objective:

* zero-shot classification: the loss on the logits (CE, DLR, CW margin); targeted =
  AutoAttack's top non-true classes (APGD-T), or the top one for CW;
* captioning / VQA: the LM loss (CE) or the token margin (cw) of each ground-truth string,
  one pass per string (RobustVLM); targeted = towards the task's target strings ("maybe",
  "Word" on VQA) or the user's --target.

So every name works on every task kind of its domain: charmer (attacks.charmer) edits
text and runs on text tasks only (AttackEntry.domain). Cores are registered beside their code
(attacks.core_registry); a new entry here may combine any of them. Arguments
(`--attack-args`) are checked here, once, against the signatures of the entry's cores: an
unknown name or a wrong type is refused before any work starts.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from attacks.charmer import OPTIONS as CHARMER_OPTIONS
from attacks.core_registry import core


@dataclass(frozen=True)
class Member:
    name: str  # recorded as the winner of the samples it breaks, e.g. "apgd-ce"
    core: str  # a registered optimiser core (attacks.core_registry)
    loss: str  # "ce" | "dlr" | "cw"
    targeted: bool = False


# A reference implementation run as a whole on a classifier: (model, x, y, eps, norm, steps,
# seed, args) -> x_adv. It lives outside the Objective seam, so it attacks classifiers only.
External = Callable[..., Any]


@dataclass(frozen=True)
class AttackEntry:
    name: str
    members: tuple[Member, ...]  # empty: no attack (clean scores only), unless `external`
    about: str
    external: External | None = None
    external_parameters: dict[str, type] | None = None
    # What it perturbs: "pixel" (images, on the Objective seam) or "text" (a task's sentences:
    # charmer, which runs outside the seam). Tasks refuse the other domain (tasks.text_threat).
    domain: str = "pixel"
    # Arguments the entry sets unless --attack-args does (aa-rand's eot_iter): they join the checked
    # arguments, so they are recorded in each run's attack_args and identity.
    defaults: tuple[tuple[str, Any], ...] = ()

    def parameters(self) -> dict[str, type]:
        """Every argument `--attack-args` may set for this entry, with its type."""
        if self.external_parameters is not None:
            return dict(self.external_parameters)
        out: dict[str, type] = {}
        for member in self.members:
            out |= core(member.core).options
            if member.targeted and member.core == "apgd":
                out["n_targets"] = int  # how many of AutoAttack's top classes APGD-T tries
        return out


def _m(name: str, core: str, loss: str, targeted: bool = False) -> Member:
    return Member(name, core, loss, targeted)


APGD_CE, APGD_T = _m("apgd-ce", "apgd", "ce"), _m("apgd-t", "apgd", "dlr", targeted=True)
TABLE: dict[str, AttackEntry] = {e.name: e for e in (
    AttackEntry("none", (), "no attack: clean scores (robust = clean)"),
    AttackEntry("apgd", (APGD_CE,), "APGD-CE (Croce & Hein 2020): classification CE / the LM loss of each "
                "ground-truth string"),
    AttackEntry("apgd-dlr", (_m("apgd-dlr", "apgd", "dlr"),), "APGD on the DLR margin (classification only: "
                "it needs class logits)"),
    AttackEntry("apgd-t", (APGD_T,), "APGD-T: targeted DLR on AutoAttack's top-9 classes / the LM loss towards "
                "the task's target strings"),
    AttackEntry("pgd", (_m("pgd", "pgd", "ce"),), "PGD with random start (Madry et al. 2018) on the same losses"),
    AttackEntry("cw", (_m("cw", "cw", "cw", targeted=True),), "Carlini-Wagner margin (2017): towards the top "
                "non-true class / away from each ground-truth string's tokens"),
    AttackEntry("aa", (APGD_CE, APGD_T), "worst case of APGD-CE + APGD-T: the RobustVLM protocol for zero-shot "
                "classification and, with its VLM settings, for captioning / VQA"),
    AttackEntry("aa-rand", (APGD_CE, _m("apgd-dlr", "apgd", "dlr")), "AutoAttack's version='rand' for randomised "
                "defences: APGD-CE + APGD-DLR, each gradient averaged over 20 draws (eot_iter 20), one restart "
                "(fra31/auto-attack autoattack/autoattack.py); classification only (DLR needs class logits)", defaults=(("eot_iter", 20), ("restarts", 1))),
    AttackEntry("charmer", (), "Charmer (LEAF's text attack): greedy character edits within Levenshtein distance "
                "k = --eps (--norm levenshtein); text tasks only", external_parameters=CHARMER_OPTIONS,
                domain="text"),
)}
ALIASES = {"apgd-ce": "apgd"}


def lookup(name: str) -> AttackEntry | None:
    return TABLE.get(ALIASES.get(name, name))


def check_arguments(entry: AttackEntry, args: dict[str, Any]) -> dict[str, Any]:
    """The arguments, checked against the entry's cores, with the entry's defaults under them;
    ValueError names the first bad one."""
    args = {**dict(entry.defaults), **args}
    allowed = entry.parameters()
    for key, value in args.items():
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "no arguments"
            raise ValueError(f"--attack {entry.name} has no argument {key!r}; it takes: {known}")
        want = allowed[key]
        if not _fits(value, want):
            raise ValueError(f"--attack {entry.name}: {key} must be {want.__name__}, got {value!r}")
        # Counts and step sizes are positive; a margin (kappa) may be 0.
        if want in (int, float) and entry.external is None and (value < 0 or (value == 0 and key != "kappa")):
            raise ValueError(f"--attack {entry.name}: {key} must be {'>= 0' if key == 'kappa' else '> 0'}, "
                             f"got {value!r}")
    return args


def _fits(value: Any, want: type) -> bool:
    if want is bool:
        return isinstance(value, bool)
    if want is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if want is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, want)
