"""APGD (Croce & Hein 2020), as AutoAttack implements it, on any Objective.

Schedule: a step-size check after 22% of the iterations, then at intervals shrinking by 3%
down to 6%; initial step initial_step * eps; momentum 0.75; at a check, a sample whose loss
increased in at most rho of the steps (oscillation) or whose best loss did not improve
since an unreduced check (stagnation) halves its step and restarts from its best point.

What differs from AutoAttack, on purpose: samples leave the batch the moment they succeed
(their result is final), so a weak model costs a few iterations instead of all of them;
gradients are taken w.r.t. the input only; randomness comes from a seeded Generator.

eot_iter (expectation over transformation) averages each gradient over that many draws of a
randomised model, as AutoAttack's eot_iter does; the step-size logic and the success check
use the last draw's loss, as there. With eot_iter > 1 samples no longer leave at a success
(one draw of a randomised model proves little): each run is then AutoAttack's, call for call.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from attacks import threat
from attacks.checks import check_choice, check_eot_iter, check_eps, check_norm, check_steps, check_target
from attacks.classify import clean_pass, labels_for, top_targets
from attacks.core import AttackResult, attack_mode, evaluate, loss_and_grad
from attacks.core_registry import register_core
from attacks.guard import check_valid
from attacks.losses import LOSSES
from attacks.objectives import ClassifierObjective, Model, Objective
from attacks.randomness import SampleSeeds, generator_rows, make_generator
from attacks.threat import Norm


class _Schedule:
    """AutoAttack's checkpoint schedule, shared by all samples of a run."""

    def __init__(self, steps: int) -> None:
        self.interval = max(int(0.22 * steps), 1)
        self.min_interval = max(int(0.06 * steps), 1)
        self.decrease = max(int(0.03 * steps), 1)
        self.since_check = 0

    def tick(self) -> bool:
        """Count one iteration; True when a step-size check is due (then the interval shrinks)."""
        self.since_check += 1
        if self.since_check < self.interval:
            return False
        self.since_check = 0
        return True

    def shrink(self) -> None:
        self.interval = max(self.interval - self.decrease, self.min_interval)


def _apgd_once(
    objective: Objective,
    x: Tensor,
    idx: Tensor,
    start: Tensor,
    groups: Tensor | None,
    eps: float,
    norm: Norm,
    steps: int,
    initial_step: float,
    rho: float,
    stop_on_success: bool,
    eot_iter: int,
) -> AttackResult:
    """One APGD run from `start` on the rows `idx` of the objective's batch.

    Rows sharing a `groups` id (e.g. one image under several targets) leave together as
    soon as one of them succeeds. With eot_iter > 1 no row leaves: on a randomised model one
    successful draw is luck, not a result, so every row runs all steps and a successful row
    returns its last successful iterate (AutoAttack's x_best_adv), the deepest one.
    """
    retire_on_success = stop_on_success and eot_iter == 1
    n = x.shape[0]
    out = AttackResult(start.clone(), torch.zeros(n, dtype=torch.bool, device=x.device),
                       torch.full((n,), float("-inf"), device=x.device))
    rows = torch.arange(n, device=x.device)  # positions in this run of the still-active rows
    ev, grad = loss_and_grad(objective, start, idx, eot_iter)
    s = {
        "x0": x, "x_adv": start, "x_old": start, "grad": grad,
        "x_best": start.clone(), "grad_best": grad.clone(), "loss_best": ev.loss.clone(),
        "step": torch.full((n,), initial_step * eps, device=x.device, dtype=x.dtype),
        "loss_prev": torch.zeros(n, device=x.device),  # AutoAttack compares the first loss to 0
        "increases": torch.zeros(n, device=x.device),
        "reduced_last": torch.ones(n, dtype=torch.bool, device=x.device),
        "best_last": ev.loss.clone(),
        "group": rows.clone() if groups is None else groups,
    }
    schedule = _Schedule(steps)

    def record_success(success: Tensor) -> None:
        won = rows[success]
        out.x_adv[won] = s["x_adv"][success]
        out.success[won] = True

    def retire(success: Tensor) -> None:
        """Drop the rows whose goal (or a group mate's) is reached; their result is final."""
        nonlocal rows
        leaving = torch.isin(s["group"], s["group"][success])
        out.loss[rows[leaving]] = s["loss_best"][leaving]
        unsuccessful = leaving & ~success
        out.x_adv[rows[unsuccessful]] = s["x_best"][unsuccessful]
        keep = ~leaving
        for key in s:
            s[key] = s[key][keep]
        rows = rows[keep]

    record_success(ev.success)
    if retire_on_success and bool(ev.success.any()):
        retire(ev.success)

    for i in range(steps):
        if rows.numel() == 0:
            break
        with torch.no_grad():
            momentum = 0.75 if i > 0 else 1.0
            x0, x_adv = s["x0"], s["x_adv"]
            z = threat.project(threat.step(x_adv, s["grad"], s["step"], norm), x0, eps, norm)
            x_new = x_adv + momentum * (z - x_adv) + (1 - momentum) * (x_adv - s["x_old"])
            s["x_old"], s["x_adv"] = x_adv, threat.project(x_new, x0, eps, norm)
        ev, s["grad"] = loss_and_grad(objective, s["x_adv"], idx[rows], eot_iter)
        with torch.no_grad():
            s["increases"] += (ev.loss > s["loss_prev"]).float()
            s["loss_prev"] = ev.loss
            better = ev.loss > s["loss_best"]
            s["x_best"][better] = s["x_adv"][better]
            s["grad_best"][better] = s["grad"][better]
            s["loss_best"][better] = ev.loss[better]
            record_success(ev.success)  # before a check may move x_adv back to x_best
            if schedule.tick():
                oscillating = s["increases"] <= schedule.interval * rho
                stagnating = ~s["reduced_last"] & (s["best_last"] >= s["loss_best"])
                reduce = oscillating | stagnating
                s["reduced_last"], s["best_last"] = reduce, s["loss_best"].clone()
                s["step"][reduce] /= 2.0
                s["x_adv"][reduce] = s["x_best"][reduce]
                s["grad"][reduce] = s["grad_best"][reduce]
                s["increases"].zero_()
                schedule.shrink()
            if retire_on_success and bool(ev.success.any()):
                retire(ev.success)

    pending = ~out.success[rows]
    out.x_adv[rows[pending]] = s["x_best"][pending]
    out.loss[rows] = s["loss_best"]
    return out


@register_core("apgd")
def run_apgd(
    objective: Objective,
    x: Tensor,
    *,
    eps: float,
    norm: Norm = "linf",
    steps: int = 100,
    restarts: int = 1,
    seed: int | torch.Generator | SampleSeeds = 0,
    random_start: bool = True,
    initial_step: float = 2.0,
    rho: float = 0.75,
    eot_iter: int = 1,
    stop_on_success: bool = True,
    active: Tensor | None = None,
    groups: Tensor | None = None,
    x_init: Tensor | None = None,
    name: str = "apgd",
) -> AttackResult:
    """APGD on an objective: the entry point for attacks on anything differentiable.

    `active` (bool [N]) restricts the attack to some rows (the rest come back as x,
    unsuccessful). Rows already successful at x are not attacked. Restarts run only on
    rows still unsuccessful; without successes (e.g. a caption loss), every restart runs
    on all rows and the highest-loss point wins. `groups` ([N] ids) ties rows together:
    once one row of a group succeeds, the others stop. `x_init` starts the first restart
    there (projected onto the threat set) instead of at x or a random point: RobustVLM's
    refinement from the best perturbation so far. `eot_iter` > 1 averages every gradient
    over that many draws of a randomised model (AutoAttack's EOT); the clean check stays one
    pass, as AutoAttack's. The returned batch is checked by the validity guard.
    """
    check_eot_iter(eot_iter)
    n = x.shape[0]
    generator = make_generator(seed, x.device)
    result = AttackResult(x.clone(), torch.zeros(n, dtype=torch.bool, device=x.device),
                          torch.full((n,), float("-inf"), device=x.device))
    todo = torch.ones(n, dtype=torch.bool, device=x.device) if active is None else active.clone()
    if bool(todo.any()):
        idx = todo.nonzero()[:, 0]
        clean = evaluate(objective, x[idx], idx)
        result.success[idx] = clean.success
        result.loss[idx] = clean.loss
        todo[idx[clean.success]] = False

    def settle_groups() -> None:
        if groups is not None and stop_on_success:
            todo[torch.isin(groups, groups[result.success])] = False

    settle_groups()
    for _ in range(restarts):
        idx = todo.nonzero()[:, 0]
        if idx.numel() == 0:
            break
        x_sub = x[idx]
        if x_init is not None:
            start, x_init = threat.project(x_init[idx], x_sub, eps, norm), None  # later restarts start afresh
        else:
            start = (threat.random_start(x_sub, eps, norm, generator_rows(generator, idx)) if random_start
                     else x_sub.clone())
        sub_groups = None if groups is None else groups[idx]
        run = _apgd_once(objective, x_sub, idx, start, sub_groups, eps, norm, steps, initial_step, rho,
                         stop_on_success, eot_iter)
        take = run.success | (~result.success[idx] & (run.loss > result.loss[idx]))
        result.x_adv[idx[take]] = run.x_adv[take]
        result.loss[idx[take]] = run.loss[take]
        result.success[idx] |= run.success
        if stop_on_success:
            todo[idx[run.success]] = False
            settle_groups()
    check_valid(result.x_adv, x, eps, norm, name)
    return result


APGD_LOSSES = ("ce", "dlr", "ce-targeted", "dlr-targeted")


def apgd(
    model: Model,
    x: Tensor,
    y: Tensor,
    eps: float = 4 / 255,
    norm: str = "linf",
    steps: int = 100,
    loss: str = "ce",
    restarts: int = 1,
    seed: int | SampleSeeds = 0,
    *,
    n_targets: int = 9,
    target: Tensor | None = None,
    random_start: bool = True,
    initial_step: float = 2.0,
    rho: float = 0.75,
    max_rows: int | None = None,
    eot_iter: int = 1,
) -> Tensor:
    """APGD against a classifier (images in [0,1] -> logits); returns x_adv like x.

    loss "ce"/"dlr": untargeted (APGD-CE, APGD-DLR). "dlr-targeted"/"ce-targeted" without
    `target`: AutoAttack's APGD-T, one run per each of the n_targets top non-true classes,
    success = misclassification. With `target` ([N] labels): a true targeted attack,
    success = the target class is predicted. Samples never broken come back at their
    highest-loss point (of the last target's run for APGD-T). max_rows bounds the batch
    APGD-T packs its target runs into (default: len(x)). `seed` is one seed for the batch,
    or SampleSeeds (one per sample; APGD-T then seeds each (sample, target) run on its own).
    eot_iter: gradients averaged over that many draws of a randomised model (AutoAttack's EOT).
    """
    norm_ = check_norm(norm)
    eps = check_eps(eps, norm_)
    check_steps(steps)
    check_steps(restarts, "restarts")
    check_choice(loss, APGD_LOSSES, "loss")
    check_eot_iter(eot_iter)
    spec = LOSSES[loss]
    with attack_mode(model):
        clean = clean_pass(model, x)
        y = labels_for(y, clean, x)
        if clean.n_classes < spec.min_classes:
            raise ValueError(
                f"loss={loss!r} needs a model with at least {spec.min_classes} classes; this one has {clean.n_classes}"
            )
        if target is not None and not spec.targeted:
            raise ValueError(f"target= needs a targeted loss (ce-targeted, dlr-targeted), not loss={loss!r}")
        generator = make_generator(seed, x.device)
        attack = partial(run_apgd, eps=eps, norm=norm_, steps=steps, restarts=restarts, seed=generator,
                         random_start=random_start, initial_step=initial_step, rho=rho, eot_iter=eot_iter,
                         name=f"apgd-{loss}")
        if spec.targeted and target is None:
            if not 1 <= n_targets <= clean.n_classes - 1:
                raise ValueError(f"n_targets={n_targets} must be in 1..{clean.n_classes - 1} (classes - 1)")
            targets = top_targets(clean.logits, y, n_targets)
            robust = clean.logits.argmax(dim=1) == y
            x_adv = _apgd_top_targets(attack, model, x, y, robust, loss, targets, max_rows or x.shape[0],
                                      seed if isinstance(seed, SampleSeeds) else None)
        else:
            if spec.targeted:
                assert target is not None
                t = check_target(target, y, clean.n_classes).to(x.device)
                objective = ClassifierObjective(model, y, loss, t, success="target")
            else:
                objective = ClassifierObjective(model, y, loss)
            x_adv = attack(objective, x).x_adv
    check_valid(x_adv, x, eps, norm_, f"apgd-{loss}")
    return x_adv


def _apgd_top_targets(attack: Callable[..., AttackResult], model: Model, x: Tensor, y: Tensor,
                      robust: Tensor, loss: str, targets: Tensor, max_rows: int,
                      seeds: SampleSeeds | None) -> Tensor:
    """AutoAttack's APGD-T: one APGD run per target, each only on samples still robust.

    Runs for several targets are packed into one batch (rows = target x sample, stopping
    together once any target succeeds) as long as the packed batch has at most max_rows
    rows (default: the caller's batch size, so memory never exceeds what the caller chose).
    Each row is the same APGD run as in the sequential order, so the attack is exactly as
    strong. With per-sample `seeds`, each (sample, target) run draws from its own seed, so
    the packing does not change any result.
    """
    n_targets = targets.shape[1]
    x_adv, robust = x.clone(), robust.clone()
    done = 0
    while done < n_targets and bool(robust.any()):
        samples = robust.nonzero()[:, 0]
        k = samples.numel()
        pack = min(max(max_rows // k, 1), n_targets - done)
        sample_of_row = samples.repeat(pack)
        target_of_row = targets[samples, done : done + pack].T.reshape(-1)
        own = {} if seeds is None else {
            "seed": seeds.rows(sample_of_row).salted(torch.arange(done, done + pack).repeat_interleave(k))}
        run = attack(ClassifierObjective(model, y[sample_of_row], loss, target_of_row), x[sample_of_row],
                     groups=sample_of_row, **own)
        x_adv[samples] = run.x_adv[(pack - 1) * k :]  # still robust: the last target's best point
        hits = run.success.view(pack, k)
        broken = hits.any(dim=0)
        first_hit = hits.int().argmax(dim=0) * k + torch.arange(k, device=x.device)
        x_adv[samples[broken]] = run.x_adv[first_hit[broken]]
        robust[samples[broken]] = False
        done += pack
    return x_adv
