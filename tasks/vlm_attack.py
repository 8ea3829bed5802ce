"""Attacking a VLM on captioning / VQA: the LM objectives and the worst-case protocol.

Each member of the attack (attacks.table) runs its core on the LM objective, one pass per
string: untargeted members push away from each ground-truth caption / frequent answer
(RobustVLM), targeted members towards the task's target strings ("maybe", "Word" on VQA), or
towards each sample's own wrong answers where the task names them (POPE, ScienceQA:
VLMTask.push_targets).
After each pass the VLM answers on the adversarial image and the lowest-scoring output so
far is kept per sample (the clean output is the first candidate, so a robust score never
exceeds the clean one). With --target every member pushes towards that string instead;
success = the target contained in the output.

APGD runs with RobustVLM's settings here (no random start, initial step eps), unless
--attack-args says otherwise. All samples of a batch are attacked together (RobustVLM
runs one at a time); the cores are the classification ones, on another objective.

Three protocols (bench run --protocol; docs/protocol.md):
* strict: the passes above; a score of 0 is no longer attacked (exact).
* robustvlm: RobustVLM's `vlm_eval/run_evaluation.py` ensemble: after the untargeted APGD
  passes, one more APGD pass in float32 on every sample still attacked, from its best point
  so far on the string that found it (the clean image and the first string where no pass
  lowered the score), and its early stops.
* simclip: the Sim-CLIP scripts' `--attack apgd` (speedlab-git/SimCLIP `vlm_eval/run_evaluation.py`,
  attack list `[(attack_str, 'none', 'clean', 0)]`): ONE APGD pass on the first string, and the
  adversarial output is the score, even where it scores above the clean one.
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from attacks import run_apgd
from attacks.core import attack_mode
from attacks.core_registry import core
from attacks.objectives import Evaluation
from attacks.precision import LOW_PRECISIONS, autocast, float32_weights, tf32
from attacks.table import Member
from tasks.base import AttackSettings, Record, core_records
from tasks.contracts import VLM
from tasks.token_losses import mean_token_margin

# RobustVLM's APGD for VLMs: start at x, first step = eps (attack_vlm in its eval code).
# Applies to every core that is APGD underneath (apgd, and cw's margin steps).
APGD_VLM_DEFAULTS: dict[str, Any] = {"random_start": False, "initial_step": 1.0}
# The attack entry Sim-CLIP's protocol runs: its scripts' single untargeted APGD pass.
SIMCLIP_ATTACK = "apgd"
# Arguments of the classic L2 CW (tanh space, Adam, search over c): they have no meaning on an LM.
CLASSIC_CW_ONLY = ("c", "binary_search_steps", "lr", "abort_early")


class LMObjective:
    """Per-sample LM loss of one string per row; maximised (untargeted) or minimised (targeted).

    loss "ce": the mean token cross-entropy (the LM loss). loss "cw": the mean token margin
    (CW's max-other-logit minus true-logit, floored at -kappa). There is no success test
    inside the attack: it would need a generation per step, so every sample runs all
    iterations and the output is judged after the attack.
    """

    def __init__(self, vlm: VLM, prompts: list[str], targets: list[str], towards: bool, loss: str = "ce",
                 kappa: float = 0.0) -> None:
        self.vlm, self.prompts, self.targets, self.loss, self.kappa = vlm, prompts, targets, loss, kappa
        self.sign = -1.0 if towards else 1.0

    def __call__(self, x: Tensor, idx: Tensor) -> Evaluation:
        rows = idx.tolist()
        prompts, targets = [self.prompts[i] for i in rows], [self.targets[i] for i in rows]
        if self.loss == "ce":
            loss = self.vlm.loss(x, prompts, targets)
        else:  # the margin, written so that maximising it moves away from the string
            loss = -mean_token_margin(*self.vlm.target_logits(x, prompts, targets), self.kappa)
        return Evaluation(loss=self.sign * loss, success=torch.zeros(len(rows), dtype=torch.bool, device=x.device))


def check_vlm_attack(settings: AttackSettings) -> None:
    """ValueError when the attack cannot run on a VLM (asked before any work)."""
    entry = settings.entry
    if entry.external is not None:
        raise ValueError(f"--attack {entry.name} attacks classifiers only; on captioning / VQA use apgd, pgd, cw or aa")
    if any(m.loss == "dlr" and not m.targeted for m in entry.members):
        raise ValueError(f"--attack {entry.name} needs class logits (DLR); on captioning / VQA use apgd, pgd, cw or aa")
    if settings.protocol == "simclip" and entry.name != SIMCLIP_ATTACK:
        raise ValueError(f"--protocol simclip is Sim-CLIP's single APGD pass; use --attack {SIMCLIP_ATTACK} (or "
                         f"another --protocol for --attack {entry.name})")
    classic = [k for k in CLASSIC_CW_ONLY if k in settings.args]
    if classic:
        raise ValueError(f"--attack-args {classic[0]!r} belongs to the classic L2 CW on classifiers; on captioning / "
                         "VQA, cw runs APGD on the token margin (it takes kappa)")


def _is_apgd(member: Member) -> bool:
    """Whether the member's core is APGD (it then takes RobustVLM's settings and a start point)."""
    return core(member.core).run is run_apgd


def _run_core(vlm: VLM, member: Member, x: Tensor, prompts: list[str], targets: list[str], towards: bool,
              active: Tensor, s: AttackSettings, label: str, x_init: Tensor | None = None) -> Tensor:
    args = {**(APGD_VLM_DEFAULTS if _is_apgd(member) else {}), **s.args}
    if x_init is not None:
        args["x_init"] = x_init
    args.pop("n_targets", None)  # the classifier's top-k classes; a VLM's targets are the task's strings
    # DLR lives on class logits: APGD-T's targeted DLR becomes the LM loss towards the task's
    # target strings, as in RobustVLM's VQA passes (untargeted DLR is refused up front).
    loss = "cw" if member.loss == "cw" else "ce"
    objective = LMObjective(vlm, prompts, targets, towards, loss, args.pop("kappa", 0.0))
    run = core(member.core).run
    # The passes compute in s.precision; the outputs the protocol keeps are generated outside it.
    with autocast(s.precision, x.device), tf32(s.precision == "tf32"):
        return run(objective, x, eps=s.eps, norm=s.norm, steps=s.steps, seed=s.attack_seed, stop_on_success=False,
                   active=active, name=label, **args).x_adv


Pass = tuple[str, list[str], list[bool], bool]  # (label, string per row, row takes part, towards)


def _passes(member: Member, refs: list[list[str]], extra_targets: tuple[str, ...], n: int,
            target: str | None, protocol: str, pushes: list[list[str]] | None = None) -> list[Pass]:
    if target is not None:
        return [(f"{member.name}:target", [target] * n, [True] * n, True)]
    if member.targeted and pushes is not None:  # each sample's own wrong answers (POPE, ScienceQA)
        return [(f"{member.name}:towards-{k}", [p[k] if k < len(p) else "" for p in pushes],
                 [k < len(p) for p in pushes], True) for k in range(max(map(len, pushes), default=0))]
    if member.targeted:
        return [(f"{member.name}:towards:{t}", [t] * n, [True] * n, True) for t in extra_targets]
    strings = 1 if protocol == "simclip" else max(map(len, refs))  # Sim-CLIP attacks the first string only
    return [(f"{member.name}:ref-{k}", [p[k] if k < len(p) else "" for p in refs], [k < len(p) for p in refs], False)
            for k in range(strings)]


def _mask(rows: list[int], x: Tensor) -> Tensor:
    active = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    active[rows] = True
    return active


def attack_batch(vlm: VLM, task: Any, ids: list[str], x: Tensor, s: AttackSettings,
                 scorer: Any) -> list[Record]:
    """One record per sample: clean and worst-case output and score, the pass that won, norms."""
    prompts, refs = task.prompts(ids, vlm.prompts), task.attack_targets(ids)
    pushes = task.push_targets(ids)  # per-sample strings targeted members push towards (None: extra_targets)

    def answer(images: Tensor, rows: list[int]) -> dict[str, str]:
        chosen = [ids[r] for r in rows]
        return dict(zip(chosen, task.answers(vlm, chosen, images[rows])))

    everyone = list(range(len(ids)))
    clean_out = answer(x, everyone)
    clean = scorer(clean_out)
    worst_out, worst, winner, x_worst = dict(clean_out), dict(clean), ["clean"] * len(ids), x.clone()
    hit = None if s.target is None else [s.target.lower() in clean_out[i].lower() for i in ids]
    floor = 0.0 if s.early_stop is None else s.early_stop
    single_pass = s.protocol == "simclip"

    def consider(x_adv: Tensor, rows: list[int], label: str) -> None:
        # A pass that left a sample's image as it was gives it no new candidate: its output is the
        # clean one (generated again in another batch, a near-tie could differ; a point at
        # distance 0 must score what the clean image scores).
        rows = [r for r in rows if not torch.equal(x_adv[r], x[r])]
        if not rows:
            return
        outputs = answer(x_adv, rows)
        scores = scorer(outputs)
        for r in rows:
            i = ids[r]
            if hit is not None:  # targeted: the first pass that hits wins, else the latest output stands
                if not hit[r]:
                    hit[r] = s.target.lower() in outputs[i].lower()  # type: ignore[union-attr]
                    worst[i], worst_out[i], winner[r], x_worst[r] = scores[i], outputs[i], label, x_adv[r]
            elif scores[i] < worst[i] or single_pass:  # Sim-CLIP scores the adversarial output, whatever it is
                worst[i], worst_out[i], winner[r], x_worst[r] = scores[i], outputs[i], label, x_adv[r]

    current = s  # the settings the passes run with; float32 once the float32 stage has begun
    with attack_mode(vlm), ExitStack() as float32_stage:  # type: ignore[arg-type]
        for member in s.entry.members if s.attacking else ():
            for label, strings, has, towards in _passes(member, refs, task.extra_targets, len(ids), s.target,
                                                        s.protocol, pushes):
                # A score at its minimum (0) cannot fall further: skipping it is exact; --early-stop
                # raises the floor and makes the score optimistic (recorded in the run config).
                # Sim-CLIP's single pass attacks every sample.
                rows = [r for r in everyone if has[r] and (single_pass or (not hit[r] if hit is not None else
                                                                          worst[ids[r]] > floor))]
                if not rows:
                    continue
                consider(_run_core(vlm, member, x, prompts, strings, towards, _mask(rows, x), current, label), rows,
                         label)
            final = s.refine or (s.precision in LOW_PRECISIONS and not single_pass)
            if final and s.target is None and not member.targeted and _is_apgd(member):
                # RobustVLM's last caption / answer pass ("prev-best"): APGD again from each sample's
                # best perturbation so far, on the string whose pass found it, in float32 (RobustVLM
                # reloads the model in fp32 for it). A low-precision attack always ends with it.
                # Its clean pass records the clean image and the first string for every sample, so
                # a sample no pass has lowered is refined too, from x on its first string. After
                # float32 passes that refinement would repeat the first pass exactly (same start,
                # string, steps and precision): it is skipped, with the same result.
                prefix = f"{member.name}:ref-"
                from_clean = s.precision != "fp32"
                string_of = {r: int(winner[r][len(prefix):]) if winner[r].startswith(prefix) else 0
                             for r in everyone if refs[r] and (from_clean or winner[r].startswith(prefix))}
                rows = [r for r in string_of if worst[ids[r]] > floor]
                # From here on the VLM computes in float32 (RobustVLM's switch to its float32 model
                # for the refinement and the VQA pushes after it), and it stays so to the end.
                float32_stage.enter_context(float32_weights(vlm))  # type: ignore[arg-type]
                current = replace(s, precision="fp32")
                if rows:
                    strings = [refs[r][string_of[r]] if r in string_of else "" for r in everyone]
                    label = f"{member.name}:refine"
                    x_adv = _run_core(vlm, member, x, prompts, strings, False, _mask(rows, x), current, label,
                                      x_worst.clone())
                    consider(x_adv, rows, label)
    if hit is not None:
        winner = [w if h else None for w, h in zip(winner, hit)]  # type: ignore[misc]
    extras: list[Record] = [{"clean_output": clean_out[i], "adv_output": worst_out[i]} for i in ids]
    if hit is not None:
        for extra, h in zip(extras, hit):
            extra["target_hit"] = h
    return core_records(ids, x, x_worst, s, [round(clean[i], 6) for i in ids], [round(worst[i], 6) for i in ids],
                        winner, extras)
