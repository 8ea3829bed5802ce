"""A run's results.json in CLIP_benchmark's shape, written by the runner beside its records."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from benchutil.fileio import write_json_atomic

# What each metric is called in CLIP_benchmark's results.json (accuracies as fractions there).
_METRIC_KEYS = {"accuracy %": ("acc1", 0.01), "CIDEr": ("cider", 1.0), "VQA acc": ("vqa_accuracy", 0.01)}


def run_results(config: dict[str, Any], n: int, clean: float, robust: float) -> dict[str, Any]:
    """CLIP_benchmark's results.json for one run (dataset, model, pretrained, task, metrics),
    with the attack that produced the robust number beside it."""
    key, scale = _METRIC_KEYS.get(config["metric"], (config["metric"], 1.0))
    provenance = config.get("provenance", {})
    return {"dataset": config["task"], "model": provenance.get("architecture", config["encoder"]),
            "pretrained": provenance.get("source", config["encoder"]), "encoder": config["encoder"],
            "task": "zeroshot_classification" if config.get("task_kind") == "zero-shot classification"
            else config.get("task_kind"), "language": "en",
            "metrics": {key: robust * scale, f"clean_{key}": clean * scale, "n_samples": n},
            "attack": {"name": config["attack"], "members": config.get("attack_members"), "eps": config["eps"],
                       "norm": config["norm"], "steps": config["steps"]},
            "vlm": config.get("vlm")}


def write_run_results(run: Path, config: dict[str, Any], n: int, clean: float, robust: float) -> None:
    write_json_atomic(run / "results.json", run_results(config, n, clean, robust))
