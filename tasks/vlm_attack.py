"""Attacking a VLM on captioning / VQA: the LM-loss objective and the worst-case protocol.

Untargeted (REFERENCE.md): one APGD run (no random start, initial step eps, highest-loss
point kept) per target string, maximising its LM loss; after each run the VLM answers on
the adversarial image and the lowest-scoring output so far is kept per sample (the clean
output is the first candidate, so a robust score never exceeds the clean one). Targeted:
APGD minimising the target's LM loss; success = target contained in the output.

All samples of a batch are attacked together (RobustVLM runs one at a time); the same APGD
core as classification runs underneath, and its validity guard checks every final image.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from attacks import checked_norms, run_apgd
from attacks.core import attack_mode
from attacks.objectives import Evaluation
from tasks.vlm_task import VLMPrompts, VLMTask


class VLM(Protocol):
    prompts: VLMPrompts

    def generate(self, images: Tensor, prompts: list[str], max_new_tokens: int) -> list[str]: ...
    def loss(self, images: Tensor, prompts: list[str], targets: list[str]) -> Tensor: ...


class LMObjective:
    """Per-sample LM loss of one string per row; maximised (untargeted) or minimised (targeted).

    There is no success test inside the attack: it would need a generation per step, so
    every sample runs all iterations and the output is judged after the attack.
    """

    def __init__(self, vlm: VLM, prompts: list[str], targets: list[str], towards: bool) -> None:
        self.vlm, self.prompts, self.targets = vlm, prompts, targets
        self.sign = -1.0 if towards else 1.0

    def __call__(self, x: Tensor, idx: Tensor) -> Evaluation:
        rows = idx.tolist()
        loss = self.vlm.loss(x, [self.prompts[i] for i in rows], [self.targets[i] for i in rows])
        return Evaluation(loss=self.sign * loss, success=torch.zeros(len(rows), dtype=torch.bool, device=x.device))


@dataclass(frozen=True)
class VLMAttack:
    eps: float
    steps: int
    seed: int
    norm: str = "linf"
    target: str | None = None  # targeted attack: this string
    early_stop: float | None = None  # stop attacking a sample once its score <= this (optimistic)


def _apgd(vlm: VLM, x: Tensor, prompts: list[str], targets: list[str], towards: bool, active: Tensor,
          s: VLMAttack, name: str) -> Tensor:
    objective = LMObjective(vlm, prompts, targets, towards)
    result = run_apgd(objective, x, eps=s.eps, norm=s.norm, steps=s.steps, seed=s.seed,  # type: ignore[arg-type]
                      random_start=False, initial_step=1.0, stop_on_success=False, active=active, name=name)
    return result.x_adv


def attack_batch(vlm: VLM, task: VLMTask, ids: list[str], x: Tensor, s: VLMAttack,
                 scorer: Any) -> list[dict[str, Any]]:
    """One record per sample: clean and worst-case output and score, the pass that won, norms."""
    prompts = task.prompts(ids, vlm.prompts)

    def answer(images: Tensor, rows: list[int]) -> dict[str, str]:
        chosen = [ids[r] for r in rows]
        return dict(zip(chosen, task.answers(vlm, chosen, images[rows])))

    everyone = list(range(len(ids)))
    clean_out = answer(x, everyone)
    clean = scorer(clean_out)
    worst_out, worst, winner, x_worst = dict(clean_out), dict(clean), ["clean"] * len(ids), x.clone()
    hit: list[bool] | None = None

    def consider(x_adv: Tensor, rows: list[int], label: str) -> None:
        outputs = answer(x_adv, rows)
        scores = scorer(outputs)
        for r in rows:
            if scores[ids[r]] < worst[ids[r]]:
                worst[ids[r]], worst_out[ids[r]], winner[r] = scores[ids[r]], outputs[ids[r]], label
                x_worst[r] = x_adv[r]

    with attack_mode(vlm):  # type: ignore[arg-type]
        if s.eps > 0 and s.target is not None:
            x_adv = _apgd(vlm, x, prompts, [s.target] * len(ids), True, torch.ones(len(ids), dtype=torch.bool),
                          s, "apgd-targeted")
            outputs = answer(x_adv, everyone)
            worst_out, worst, x_worst = outputs, scorer(outputs), x_adv
            hit = [s.target.lower() in outputs[i].lower() for i in ids]
            winner = ["target" if h else None for h in hit]  # type: ignore[misc]
        elif s.eps > 0:
            passes = task.attack_targets(ids)
            plans = [(f"ref-{k}", [p[k] if k < len(p) else "" for p in passes], [k < len(p) for p in passes], False)
                     for k in range(max(map(len, passes)))]
            plans += [(f"towards:{t}", [t] * len(ids), [True] * len(ids), True) for t in task.extra_targets]
            floor = 0.0 if s.early_stop is None else s.early_stop
            for label, targets, has, towards in plans:
                # A score at its minimum (0) cannot fall further: skipping it is exact; --early-stop
                # raises the floor and makes the score optimistic (recorded in the run config).
                rows = [r for r in everyone if has[r] and worst[ids[r]] > floor]
                if not rows:
                    continue
                active = torch.zeros(len(ids), dtype=torch.bool, device=x.device)
                active[rows] = True
                consider(_apgd(vlm, x, prompts, targets, towards, active, s, label), rows, label)
    linf, l2 = checked_norms(x_worst, x, s.eps, s.norm, "vlm-attack")  # type: ignore[arg-type]
    records = []
    for r, i in enumerate(ids):
        rec = {"id": i, "clean_output": clean_out[i], "clean_score": round(clean[i], 6),
               "adv_output": worst_out[i], "adv_score": round(worst[i], 6), "winner": winner[r],
               "linf": round(linf[r], 8), "l2": round(l2[r], 6)}
        if hit is not None:
            rec["target_hit"] = hit[r]
        records.append(rec)
    return records
