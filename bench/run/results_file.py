"""A run's results.json in CLIP_benchmark's shape, written by the runner beside its records."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.run.store import read_run_records
from benchutil.fileio import write_json_atomic
from tasks.pope_metrics import POPE_KIND, split_results
from tasks.retrieval_recall import RETRIEVAL_KIND, run_recalls

# What each metric is called in CLIP_benchmark's results.json (accuracies as fractions there).
_METRIC_KEYS = {"accuracy %": ("acc1", 0.01), "CIDEr": ("cider", 1.0), "VQA acc": ("vqa_accuracy", 0.01),
                "image-to-text R@1 %": ("text_retrieval_recall@1", 0.01)}
# CLIP_benchmark's names of the task kinds it has (cli.py --task).
_TASK_NAMES = {"zero-shot classification": "zeroshot_classification", RETRIEVAL_KIND: "zeroshot_retrieval"}


def run_results(config: dict[str, Any], n: int, clean: float, robust: float) -> dict[str, Any]:
    """CLIP_benchmark's results.json for one run (dataset, model, pretrained, task, metrics),
    with the attack that produced the robust number beside it."""
    key, scale = _METRIC_KEYS.get(config["metric"], (config["metric"], 1.0))
    provenance = config.get("provenance", {})
    return {"dataset": config["task"], "model": provenance.get("architecture", config["encoder"]),
            "pretrained": provenance.get("source", config["encoder"]), "encoder": config["encoder"],
            "task": _TASK_NAMES.get(config.get("task_kind"), config.get("task_kind")), "language": "en",
            "metrics": {key: robust * scale, f"clean_{key}": clean * scale, "n_samples": n},
            "attack": {"name": config["attack"], "members": config.get("attack_members"), "eps": config["eps"],
                       "norm": config["norm"], "steps": config["steps"]},
            "vlm": config.get("vlm")}


def write_run_results(run: Path, config: dict[str, Any], n: int, clean: float, robust: float) -> None:
    results = run_results(config, n, clean, robust)
    if config.get("task_kind") == RETRIEVAL_KIND:  # all six recalls, clean and attacked, from the records
        results["metrics"].update(run_recalls(read_run_records(run)))
    if config.get("task_kind") == POPE_KIND:  # eval_pope.py's numbers per split, clean and attacked
        results["metrics"]["splits"] = split_results(read_run_records(run))
    write_json_atomic(run / "results.json", results)
