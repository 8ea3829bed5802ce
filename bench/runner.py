"""bench run: one run per (encoder, task, attack, eps); resumable, one record per sample."""
from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from attacks import checked_norms
from bench.attack_registry import AttackSettings, get_attack
from bench.encoders import Encoder
from bench.environment import git_commit, versions
from bench.store import RECORDS, RunDir, read_records
from tasks.zeroshot import ZeroShotTask

# Fields that define a run: same values, same records. The command line is not one of them.
IDENTITY = ("encoder", "sha256", "task", "attack", "eps", "steps", "seed", "norm", "attack_args",
            "sample_ids", "batch_size")


@dataclass(frozen=True)
class RunPlan:
    encoder: str
    task: str
    attack: str
    eps: float
    label: str  # eps as the user wrote it ("clean" for 0)
    steps: int
    seed: int
    n_samples: int | None
    batch_size: int
    norm: str = "linf"
    attack_args: dict[str, Any] = field(default_factory=dict)
    vlm: str | None = None  # captioning / VQA runs: the VLM around the encoder
    target: str | None = None  # targeted VLM attack: the string pushed towards
    early_stop: float | None = None  # VLM: stop attacking a sample at this score (optimistic)

    def __post_init__(self) -> None:
        if self.eps == 0:  # a clean run is the same whatever attack was asked for
            object.__setattr__(self, "attack", "none")


@dataclass
class RunResult:
    plan: RunPlan
    path: Path
    n: int
    clean: float  # mean clean score: accuracy %, CIDEr or VQA accuracy %
    robust: float  # mean worst-case score under the run's attack
    metric: str = "accuracy %"
    target_success: float | None = None  # targeted VLM runs: % of outputs containing the target


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-")


def batch_seed(seed: int, batch_index: int) -> int:
    """Each batch gets its own seed, so a resumed run redoes a batch exactly."""
    return int(hashlib.sha256(f"{seed}:{batch_index}".encode()).hexdigest()[:8], 16)


def run_config(plan: RunPlan, encoder: Encoder, sample_ids: list[str], device: str,
               command: list[str]) -> dict[str, Any]:
    return {
        "encoder": plan.encoder, "provenance": encoder.provenance.as_dict(), "sha256": encoder.provenance.sha256,
        "task": plan.task, "attack": plan.attack, "eps": plan.eps, "eps_label": plan.label, "steps": plan.steps,
        "seed": plan.seed, "norm": plan.norm, "attack_args": plan.attack_args, "batch_size": plan.batch_size,
        "n_samples": len(sample_ids), "sample_ids": sample_ids, "command": command, "device": device,
        "versions": versions(), "git_commit": git_commit(),
    }


def run_directory(out: Path, plan: RunPlan, sha256: str) -> Path:
    fields: list[Any] = [plan.steps, plan.seed, plan.n_samples, plan.norm, plan.attack_args, plan.batch_size, sha256]
    if plan.vlm is not None:  # only VLM runs carry these, so classification folders keep their names
        fields += [plan.vlm, plan.target, plan.early_stop]
    digest = hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:8]
    model = _slug(plan.encoder) if plan.vlm is None else f"{_slug(plan.vlm)}+{_slug(plan.encoder)}"
    attack = plan.attack if plan.target is None or plan.eps == 0 else f"{plan.attack}-targeted"
    return out / f"{model}__{_slug(plan.task)}__{attack}__{_slug(plan.label)}__{digest}"


BatchRecords = Callable[[int, list[str]], list[dict[str, Any]]]  # (batch index, ids) -> a record per id


def run_batches(path: Path, config: dict[str, Any], identity: tuple[str, ...], sample_ids: list[str],
                batch_size: int, desc: str, records_for: BatchRecords) -> None:
    """Append a record per sample, batch by batch, to the run folder; finished samples are kept.

    A batch with any unfinished sample runs whole, so a resumed run's records are those of an
    uninterrupted one; only the missing ones are appended.
    """
    store = RunDir(path, config, identity)
    try:
        done = store.finished()
        batches = [sample_ids[i : i + batch_size] for i in range(0, len(sample_ids), batch_size)]
        with tqdm(total=len(sample_ids), initial=len(done & set(sample_ids)), desc=desc, unit="sample",
                  file=sys.stderr, leave=False, disable=None) as bar:
            for k, ids in enumerate(batches):
                if all(i in done for i in ids):
                    continue
                records = [r for r in records_for(k, ids) if r["id"] not in done]
                store.append(records)
                bar.update(len(records))
    finally:
        store.close()


def execute(plan: RunPlan, encoder: Encoder, task: ZeroShotTask, out: Path, cache_dir: Path | None,
            device: str, command: list[str] | None = None) -> RunResult:
    sample_ids = task.sample_ids(plan.n_samples, plan.seed)
    path = run_directory(out, plan, encoder.provenance.sha256)
    victim = task.victim(encoder, cache_dir)
    attack = get_attack(plan.attack)

    def records_for(k: int, ids: list[str]) -> list[dict[str, Any]]:
        x, y = task.load(ids, encoder.image_size)
        x, y = x.to(device), y.to(device)
        settings = AttackSettings(plan.eps, plan.steps, batch_seed(plan.seed, k), plan.norm, plan.attack_args)
        outcome = attack(victim, x, y, settings)
        clean_pred, adv_pred = outcome.clean_pred, outcome.adv_pred
        linf, l2 = checked_norms(outcome.x_adv, x, plan.eps, plan.norm, plan.attack)  # type: ignore[arg-type]
        return [{"id": i, "label": int(y[j]), "clean_pred": int(clean_pred[j]), "adv_pred": int(adv_pred[j]),
                 "clean_correct": bool(clean_pred[j] == y[j]), "robust": bool(outcome.robust[j]),
                 "winner": outcome.winner[j], "linf": round(linf[j], 8),
                 "l2": round(l2[j], 6)} for j, i in enumerate(ids)]

    run_batches(path, run_config(plan, encoder, sample_ids, device, command or []), IDENTITY, sample_ids,
                plan.batch_size, f"{plan.encoder} {plan.task} {plan.attack} {plan.label}", records_for)
    return summarize(plan, path)


def summarize(plan: RunPlan, path: Path) -> RunResult:
    records = read_records(path / RECORDS)
    n = len(records)
    clean = 100 * sum(r["clean_correct"] for r in records) / max(n, 1)
    robust = 100 * sum(r["robust"] for r in records) / max(n, 1)
    return RunResult(plan, path, n, clean, robust)
