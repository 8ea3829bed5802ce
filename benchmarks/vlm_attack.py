"""VLM attack throughput: batched across samples vs one sample at a time (RobustVLM's way).

    python -m benchmarks.vlm_attack [--n 16] [--steps 20] [--batch 16] [--device cpu]

Same tiny-llava, encoder, samples, eps and protocol (tasks/vlm_attack.py, --attack aa: APGD
per ground-truth string and the VQA pushes, worst output kept); only the batch size differs. Prints samples/s,
peak memory, the robust score of each and how many per-sample scores agree; writes
benchmarks/out/vlm_attack_<device>.json.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from attacks.table import TABLE
from bench import load_encoder
from bench.suites import get_suite, load_task
from bench.vlm import load_vlm
from benchmarks.common import environment, measure, print_table, write_json
from tasks.base import AttackSettings
from tasks.vlm_attack import attack_batch


def run(vlm, task, ids: list[str], batch: int, settings: AttackSettings, device: torch.device) -> list[dict]:
    scorer = task.scorer(ids)
    records = []
    for i in range(0, len(ids), batch):
        chunk = ids[i : i + batch]
        records += attack_batch(vlm, task, chunk, task.load(chunk, vlm.image_size).to(device), settings, scorer)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--eps", type=float, default=4 / 255)
    parser.add_argument("--encoder", default="clip")
    parser.add_argument("--tasks", default="tiny-captions,tiny-vqa")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    suite = get_suite("tiny")
    vlm = load_vlm("tiny-llava", suite.vlms(), load_encoder(args.encoder, "tiny", args.device), args.device)
    settings = AttackSettings(TABLE["aa"], args.eps, "linf", args.steps, seed=0)  # the RobustVLM protocol
    rows = []
    for name in args.tasks.split(","):
        task = load_task(suite, name, None)
        ids = task.sample_ids(args.n, 0)
        results = {b: measure(lambda b=b: run(vlm, task, ids, b, settings, device), device) for b in (1, args.batch)}
        one, many = results[1], results[args.batch]
        agree = sum(abs(a["adv_score"] - b["adv_score"]) < 1e-6 for a, b in zip(one.value, many.value))
        for b, m in results.items():
            rows.append({"task": name, "metric": task.metric, "batch": b, "samples/s": args.n / m.seconds,
                         "seconds": m.seconds, "peak MB": m.peak_mb,
                         "robust score": sum(r["adv_score"] for r in m.value) / args.n,
                         "clean score": sum(r["clean_score"] for r in m.value) / args.n,
                         "speed-up vs batch 1": one.seconds / m.seconds, "same per-sample score": f"{agree}/{args.n}"})
    columns = ["task", "metric", "batch", "samples/s", "seconds", "peak MB", "clean score", "robust score",
               "speed-up vs batch 1", "same per-sample score"]
    print_table(rows, columns)
    write_json(Path(f"benchmarks/out/vlm_attack_{device.type}.json"),
               {"environment": environment(), "settings": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
