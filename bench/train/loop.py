"""The one training loop of `bench train`: schedule, steps, divergence, progress, checkpoints, resume.

Every method (the tiny CLIP, tiny-llava, Sim-CLIP / FARE / TeCoA) describes its run as a
`Job`: what is trained, its optimiser, and the loss of step k. The loop sets the lr of step
k before the step, refuses a non-finite loss with one line, clips gradients when asked,
shows progress (a bar on a terminal, a line every `log_every` steps in a log), writes an
atomic checkpoint every `checkpoint_every` steps, and on --resume restores weights,
optimiser, step and RNG state after checking the run's identity (recipe, base, data).
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from attacks.core import NonFiniteLossError
from bench.train.checkpoint import load_state, save_state
from bench.train.optim import lr_at, set_lr
from benchutil.errors import BenchError


def _no_status(done: int, loss: float) -> dict[str, str]:
    return {}


@dataclass
class Job:
    name: str  # "train fare eps 0.0157": the progress label and the subject of errors
    out: Path
    steps: int
    lr: float
    warmup: int
    checkpoint_every: int
    trainable: nn.Module  # what the checkpoint holds
    optimizer: torch.optim.Optimizer
    identity: dict[str, Any]  # recipe, base, data: resuming with anything else is refused
    loss: Callable[[int], Tensor]  # the scalar loss of step k, with its graph
    generator: torch.Generator | None = None  # a sampling RNG to restore on resume
    extra_state: Callable[[], dict[str, Any]] = dict  # more resumable state (a sampler's position)
    restore_extra: Callable[[dict[str, Any]], None] = lambda extra: None
    max_grad_norm: float | None = None
    status: Callable[[int, float], dict[str, str]] = _no_status  # more to show after step `done`
    loss_format: str = ".3f"
    log_every: int = 100
    main: bool = True  # this process writes checkpoints and shows progress (rank 0)
    barrier: Callable[[], None] = lambda: None  # all processes meet after a checkpoint
    schedule: str = "ours"  # bench.train.optim.lr_at: "robustvlm" runs step 0 at the base lr


@dataclass
class Outcome:
    start: int  # the step training (re)started at
    losses: deque[float] = field(default_factory=lambda: deque(maxlen=50))  # the last 50 losses
    seconds: float = 0.0  # spent in this session


def _resume(job: Job) -> int:
    state = load_state(job.out)
    if state is None:
        return 0
    saved = state["extra"].get("identity")
    if saved != job.identity:
        changed = sorted(k for k in {*job.identity, *(saved or {})} if (saved or {}).get(k) != job.identity.get(k))
        raise BenchError(f"the checkpoint in {job.out} was made with other settings (another recipe, base or data: "
                         f"{', '.join(changed) or 'an older format'} differ); resume with the same flags or choose "
                         "another --out")
    job.trainable.load_state_dict(state["model"])
    job.optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if job.generator is not None:
        job.generator.set_state(state["generator"])
    job.restore_extra(state["extra"])
    return int(state["step"])


def run(job: Job, resume: bool) -> Outcome:
    """Train job from step 0, or from its last checkpoint when resuming; returns how it went."""
    outcome = Outcome(start=_resume(job) if resume else 0)
    started = time.perf_counter()
    bar = tqdm(total=job.steps, initial=outcome.start, desc=job.name, disable=None if job.main else True)
    for step in range(outcome.start, job.steps):
        set_lr(job.optimizer, lr_at(step, job.lr, job.warmup, job.steps, job.schedule))
        try:
            loss = job.loss(step)
        except NonFiniteLossError:  # the model's outputs diverged inside an inner attack
            loss = torch.tensor(float("nan"))
        if not torch.isfinite(loss):
            raise BenchError(f"{job.name}: the loss is {loss.item()} at step {step}; lower --lr (now {job.lr}) "
                             "or check the data")
        job.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if job.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(job.trainable.parameters(), job.max_grad_norm)
        job.optimizer.step()
        done, value = step + 1, loss.item()
        outcome.losses.append(value)
        shown = {"loss": f"{value:{job.loss_format}}", **job.status(done, value)}
        bar.update(1)
        bar.set_postfix(shown)
        if job.main and bar.disable and done % job.log_every == 0:  # no terminal: a line for the log
            print(f"step {done}/{job.steps} " + " ".join(f"{k} {v}" for k, v in shown.items()), flush=True)
        if done % job.checkpoint_every == 0 or done == job.steps:
            if job.main:
                save_state(job.out, job.trainable, job.optimizer, done, job.generator,
                           {"identity": job.identity, **job.extra_state()})
            job.barrier()
    bar.close()
    outcome.seconds = time.perf_counter() - started
    return outcome
