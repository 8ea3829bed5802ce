"""bench run on captioning / VQA: one resumable run per (VLM + encoder, task, attack, eps).

Records hold, per sample, the clean and the worst-case output with their scores, so every
table number can be recomputed from them (and re-scored with another metric).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.runner import IDENTITY, RunPlan, RunResult, batch_seed, run_batches, run_config, run_directory
from bench.store import RECORDS, read_records
from tasks.vlm_attack import VLMAttack, attack_batch
from tasks.vlm_task import VLMTask

VLM_IDENTITY = (*IDENTITY, "vlm", "vlm_sha256", "target", "early_stop")
# On captioning / VQA every one of these means the RobustVLM protocol (APGD on the LM loss),
# so `--task all` works with the classification default `aa`.
VLM_ATTACKS = ("apgd", "aa", "none")


def check_vlm_attack(name: str) -> None:
    if name not in VLM_ATTACKS:
        raise BenchError(f"--attack {name} does not apply to captioning / VQA tasks; use --attack apgd "
                         f"(APGD on the LM loss, as RobustVLM) or run those tasks separately")


def execute_vlm(plan: RunPlan, vlm: Any, task: VLMTask, out: Path, device: str,
                command: list[str] | None = None) -> RunResult:
    sample_ids = task.sample_ids(plan.n_samples, plan.seed)
    encoder = vlm.encoder
    path = run_directory(out, plan, f"{encoder.provenance.sha256}+{vlm.sha256}")
    config = run_config(plan, encoder, sample_ids, device, command or [])
    config |= {"vlm": plan.vlm, "vlm_sha256": vlm.sha256, "target": plan.target, "early_stop": plan.early_stop,
               "metric": task.metric, "task_kind": task.kind,
               "protocol": "APGD per ground-truth string, no random start, initial step eps; worst output per "
                           "sample" if plan.target is None else "APGD towards the target string"}
    scorer = task.scorer(sample_ids)

    def records_for(k: int, ids: list[str]) -> list[dict[str, Any]]:
        settings = VLMAttack(plan.eps, plan.steps, batch_seed(plan.seed, k), plan.norm, plan.target, plan.early_stop)
        return attack_batch(vlm, task, ids, task.load(ids, vlm.image_size).to(device), settings, scorer)

    run_batches(path, config, VLM_IDENTITY, sample_ids, plan.batch_size,
                f"{plan.vlm}+{plan.encoder} {plan.task} {plan.attack} {plan.label}", records_for)
    return summarize_vlm(plan, path, task.metric)


def summarize_vlm(plan: RunPlan, path: Path, metric: str) -> RunResult:
    records = read_records(path / RECORDS)
    n = max(len(records), 1)
    hits = [r["target_hit"] for r in records if "target_hit" in r]
    return RunResult(plan, path, len(records), sum(r["clean_score"] for r in records) / n,
                     sum(r["adv_score"] for r in records) / n, metric,
                     100 * sum(hits) / len(hits) if hits else None)
