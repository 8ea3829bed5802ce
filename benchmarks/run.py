"""Framework overhead: `bench run` vs the bare attack on the same model, data and batches.

    python -m benchmarks.run [--n 96] [--eps 4/255,1/255]

For each eps: wall time per sample of `bench run --attack aa` (image decoding, text head,
records with fsync, progress), of our bare worst_case on the preloaded tensors, and of
pyautoattack's APGD-CE + APGD-T driven directly. Writes benchmarks/out/run.json.
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from attacks import worst_case
from bench import load_encoder
from bench.cli.main import main as bench_main
from bench.run.eps import parse_eps_list
from bench.run.runner import batch_seed
from bench.suites import get_suite, load_task
from benchmarks.common import environment, print_table, write_json
from tests import bench_fixtures as fx

BATCH = 32
STEPS = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=96, help="images (a multiple of 4 classes)")
    parser.add_argument("--eps", default="4/255,1/255")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/run.json"))
    args = parser.parse_args()
    logging.getLogger("auto-attack").setLevel(logging.WARNING)
    from pyautoattack import AutoAttack

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = fx.make_image_folder(root / "shapes", per_class=args.n // 4)
        ckpt = fx.save_full_safetensors(fx.random_model(seed=0), root / "tiny.safetensors")
        encoder = load_encoder(str(ckpt))
        task = load_task(get_suite(None), f"folder:{data}", None)
        victim = task.classifier(encoder, None)
        ids = task.sample_ids(None, 0)
        batches = [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]
        loaded = [task.load(b, encoder.image_size) for b in batches]
        for label, eps in parse_eps_list(args.eps):
            start = time.perf_counter()
            code = bench_main(["run", "--encoder", str(ckpt), "--task", f"folder:{data}", "--attack", "aa",
                               "--eps", label, "--steps", str(STEPS), "--batch-size", str(BATCH),
                               "--out", str(root / f"results-{label.replace('/', '_')}")])
            bench_time = time.perf_counter() - start
            assert code == 0
            start = time.perf_counter()
            robust = 0
            for k, (x, y) in enumerate(loaded):
                robust += int(worst_case(victim, x, y, eps=eps, steps=STEPS, seed=batch_seed(0, k)).robust.sum())
            bare_time = time.perf_counter() - start
            start = time.perf_counter()
            aa_robust = 0
            for x, y in loaded:
                adversary = AutoAttack(victim, norm="Linf", eps=eps, version="custom", attacks=["apgd-ce", "apgd-t"],
                                       seed=0, device="cpu")
                adversary.apgd.n_restarts = 1
                adversary.apgd_targeted.n_target_classes = 3  # 4 classes
                x_adv = adversary.run_standard_evaluation(x, y, batch_size=BATCH)[0]
                with torch.no_grad():
                    aa_robust += int((victim(x_adv).argmax(1) == y).sum())
            aa_time = time.perf_counter() - start
            n = len(ids)
            rows.append({"eps": label, "n": n, "bench run s/sample": bench_time / n,
                         "bare worst_case s/sample": bare_time / n, "pyautoattack s/sample": aa_time / n,
                         "framework overhead": bench_time / bare_time - 1, "bench/pyautoattack": bench_time / aa_time,
                         "robust (ours)": robust / n, "robust (pyautoattack)": aa_robust / n})
    print()
    print_table(rows, list(rows[0]))
    write_json(args.out, {"environment": environment(), "steps": STEPS, "batch_size": BATCH, "rows": rows})


if __name__ == "__main__":
    main()
