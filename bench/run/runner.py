"""bench run: one resumable run per (model, task, attack, eps), for every task kind.

The runner knows nothing of what a task measures: it plans, names and resumes runs, gives
each batch its seed, and appends the records the task's `attack` returns. Summaries come
from the record core (tasks.base.core_records), the same for every task kind: the mean
score, or the cell aggregate the task's settings name (tasks/cell_aggregates.py).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attacks.table import AttackEntry
from bench.run.environment import git_commit, versions
from bench.run.examples import ExampleWriter
from bench.run.loading import prefetch
from bench.run.progress import Progress
from bench.run.results_file import write_run_results
from bench.run.sharding import Shard
from bench.run.store import RunDir, read_run_records
from tasks.base import AttackSettings, Models, Task, Victim
from tasks.cell_aggregates import CellAggregate, aggregate_of, record_facts

# Fields that define a run: same values, same records. The command line is not one of them.
IDENTITY = ("encoder", "sha256", "task", "attack", "eps", "steps", "seed", "norm", "attack_args",
            "sample_ids", "batch_size", "vlm", "vlm_sha256", "target", "early_stop", "task_settings", "protocol",
            "precision", "random_starts")


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
    target: str | None = None  # targeted VLM attack: the string pushed towards
    early_stop: float | None = None  # VLM: stop attacking a sample at this score (optimistic)
    protocol: str = "strict"  # VLM: strict | robustvlm | simclip (bench run --protocol)
    precision: str = "fp32"  # what attacks compute in (bench run --precision)
    save_examples: int = 0  # keep the first K samples as pictures (not part of the run's identity)

    def __post_init__(self) -> None:
        if self.eps == 0:  # a clean run is the same whatever attack was asked for
            object.__setattr__(self, "attack", "none")
            object.__setattr__(self, "attack_args", {})


@dataclass
class RunResult:
    plan: RunPlan
    path: Path
    model: str  # the victim's label: "clip", "tiny-llava+clip"
    n: int
    clean: float  # mean clean score: accuracy %, CIDEr or VQA accuracy %
    robust: float  # mean worst-case score under the run's attack
    metric: str
    target_success: float | None = None  # targeted VLM runs: % of outputs containing the target


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-")


def batch_seed(seed: int, batch_index: int) -> int:
    """Each batch gets its own seed, so a resumed run redoes a batch exactly (external
    attack libraries draw from it)."""
    return int(hashlib.sha256(f"{seed}:{batch_index}".encode()).hexdigest()[:8], 16)


RANDOM_STARTS = "per-sample"  # recorded: runs made when starts were drawn per batch do not resume into these


def sample_seed(seed: int, sample_id: str) -> int:
    """Each sample's own seed for our attacks' random starts: its result does not depend on
    the batch size or on the other samples of its batch."""
    return int(hashlib.sha256(f"{seed}:sample:{sample_id}".encode()).hexdigest()[:8], 16)


def run_config(plan: RunPlan, models: Models, task: Task, victim: Victim, entry: AttackEntry,
               sample_ids: list[str], device: str, command: list[str]) -> dict[str, Any]:
    provenance = models.encoder.provenance
    return {
        "encoder": plan.encoder, "provenance": provenance.as_dict(), "sha256": provenance.sha256,
        "task": plan.task, "task_kind": task.kind, "metric": task.metric, "task_settings": task.settings,
        "attack": plan.attack,
        "attack_members": [m.name for m in entry.members] or [entry.name], "eps": plan.eps, "eps_label": plan.label,
        "steps": plan.steps, "seed": plan.seed, "norm": plan.norm, "attack_args": plan.attack_args,
        "batch_size": plan.batch_size, "n_samples": len(sample_ids), "sample_ids": sample_ids,
        "vlm": None, "vlm_sha256": None, **victim.config, "load_options": victim.load_options,
        "target": plan.target, "early_stop": plan.early_stop, "protocol": plan.protocol, "precision": plan.precision,
        "random_starts": RANDOM_STARTS, "command": command, "device": device, "versions": versions(),
        "git_commit": git_commit(),
    }


def run_directory(out: Path, plan: RunPlan, victim: Victim, task: Task) -> Path:
    fields: list[Any] = [plan.steps, plan.seed, plan.n_samples, plan.norm, plan.attack_args, plan.batch_size,
                         victim.sha256, victim.config, plan.target, plan.early_stop, task.settings, plan.protocol,
                         plan.precision]
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]
    attack = plan.attack if plan.target is None or plan.eps == 0 else f"{plan.attack}-targeted"
    model = "+".join(slug(part) for part in victim.label.split("+"))  # "tiny-llava+clip"
    return out / f"{model}__{slug(plan.task)}__{attack}__{slug(plan.label)}__{digest}"


BatchLoader = Callable[[list[str]], Any]  # ids -> the batch the task attacks
BatchRecords = Callable[[int, list[str], Any], list[dict[str, Any]]]  # (batch index, ids, batch) -> records


def run_batches(path: Path, config: dict[str, Any], identity: tuple[str, ...], sample_ids: list[str],
                batch_size: int, desc: str, load: BatchLoader, records_for: BatchRecords, shard: Shard = Shard(0, 1),
                workers: int = 0, pin_memory: bool = False) -> None:
    """Append a record per sample, batch by batch, to the run folder; finished samples are kept.

    A batch with any unfinished sample runs whole, so a resumed run's records are those of an
    uninterrupted one; only the missing ones are appended. A shard runs its own batches only.
    Batches are loaded ahead by `workers` processes (bench.run.loading).
    """
    store = RunDir(path, config, identity, shard)
    try:
        done = store.finished()
        batches = [(k, sample_ids[i : i + batch_size]) for k, i in enumerate(range(0, len(sample_ids), batch_size))
                   if shard.takes(k)]
        mine = [i for _, ids in batches for i in ids]
        label = desc if shard.alone else f"{desc} [shard {shard}]"
        progress = Progress(label, total=len(mine), initial=len(done & set(mine)))
        pending = [(k, ids) for k, ids in batches if not all(i in done for i in ids)]
        for k, ids, batch in prefetch(pending, load, workers, pin_memory):
            records = [r for r in records_for(k, ids, batch) if r["id"] not in done]
            store.append(records)
            progress.update(len(records))
        progress.close()
    finally:
        store.close()


def execute(plan: RunPlan, models: Models, task: Task, entry: AttackEntry, out: Path, cache_dir: Path | None,
            device: str, command: list[str] | None = None, shard: Shard = Shard(0, 1),
            workers: int = 0) -> RunResult:
    """Run (or resume) one plan on one task; returns its summary."""
    sample_ids = task.sample_ids(plan.n_samples, plan.seed)
    victim = task.victim(models, cache_dir)
    path = run_directory(out, plan, victim, task)
    config = run_config(plan, models, task, victim, entry, sample_ids, device, command or [])

    def load(ids: list[str]) -> Any:
        return task.load(ids, victim.image_size, **victim.load_options)

    examples = ExampleWriter(path, sample_ids[: plan.save_examples], plan.eps) if plan.save_examples else None

    def records_for(k: int, ids: list[str], batch: Any) -> list[dict[str, Any]]:
        settings = AttackSettings(entry, plan.eps, plan.norm, plan.steps, batch_seed(plan.seed, k), plan.attack_args,
                                  plan.target, plan.early_stop, tuple(sample_ids), plan.protocol,
                                  plan.precision, tuple(sample_seed(plan.seed, i) for i in ids), examples)
        return task.attack(victim.model, ids, batch, settings)

    run_batches(path, config, IDENTITY, sample_ids, plan.batch_size,
                f"{victim.label} {plan.task} {plan.attack} {plan.label}", load, records_for, shard, workers,
                pin_memory=device.startswith("cuda"))
    result = summarize(plan, path, victim.label, task.metric, aggregate_of(task.settings))
    write_run_results(path, config, result.n, result.clean, result.robust)  # CLIP_benchmark's shape
    return result


def summarize(plan: RunPlan, path: Path, model: str, metric: str,
              aggregate: CellAggregate | None = None) -> RunResult:
    """Means of the record core: clean and adversarial score (or the task's cell aggregate of
    them, e.g. POPE's F1), and the target hit rate where recorded."""
    records = read_run_records(path)
    n = max(len(records), 1)
    hits = [r["target_hit"] for r in records if "target_hit" in r]
    clean, adv = sum(r["clean_score"] for r in records) / n, sum(r["adv_score"] for r in records) / n
    if aggregate is not None and records:
        facts = record_facts(records, aggregate, str(path))
        clean = aggregate.value([r["clean_score"] for r in records], facts)
        adv = aggregate.value([r["adv_score"] for r in records], facts)
    return RunResult(plan, path, model, len(records), clean, adv, metric, 100 * sum(hits) / len(hits) if hits else None)
