"""Does a low-precision attack find what the float32 attack finds? Robust accuracy of the tiny
zoo under `aa` computed in fp32 and in bf16 (autocast; every point re-scored in fp32), side
by side on the same samples, with wall time.

    python -m benchmarks.precision [--encoders clip,fare-4,sim-clip-4,tecoa-4] [--steps 50] [--n 100]

Writes benchmarks/out/precision_<device>.json.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.cli.main import main as bench_main
from bench.report.leaderboard import accuracy_table, load_samples
from benchmarks.common import environment, print_table, write_json


def evaluate(precision: str, args: argparse.Namespace, out: Path) -> float:
    started = time.perf_counter()
    code = bench_main(["run", "--encoder", args.encoders, "--task", args.tasks, "--attack", "aa",
                       "--eps", args.eps, "--n-samples", str(args.n), "--steps", str(args.steps),
                       "--precision", precision, "--device", args.device, "--out", str(out)])
    if code != 0:
        raise SystemExit(f"bench run --precision {precision} failed ({code})")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", default="clip,fare-4,sim-clip-4,tecoa-4")
    parser.add_argument("--tasks", default="tiny-colour,tiny-shape")
    parser.add_argument("--eps", default="2/255,4/255")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    tables, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("fp32", "bf16"):
            out = Path(tmp) / precision
            seconds[precision] = evaluate(precision, args, out)
            tables[precision] = accuracy_table(load_samples(out))
    rows = []
    fp32, bf16 = tables["fp32"], tables["bf16"]
    for encoder in fp32.index:
        for column in fp32.columns:
            a, b = float(fp32.at[encoder, column]), float(bf16.at[encoder, column])
            rows.append({"encoder": encoder, "cell": column, "fp32": a, "bf16": b, "bf16 - fp32": b - a})
    print_table(rows, ["encoder", "cell", "fp32", "bf16", "bf16 - fp32"])
    diffs = [r["bf16 - fp32"] for r in rows]
    summary = {"cells": len(rows), "bf16 weaker (higher robust acc) in": int(sum(d > 0 for d in diffs)),
               "bf16 stronger in": int(sum(d < 0 for d in diffs)), "mean difference": float(sum(diffs) / len(diffs)),
               "max difference": float(max(diffs)), "seconds fp32": seconds["fp32"], "seconds bf16": seconds["bf16"]}
    print(summary)
    write_json(Path(f"benchmarks/out/precision_{args.device}.json"),
               {"environment": environment(), "settings": vars(args), "rows": rows, "summary": summary})


if __name__ == "__main__":
    main()
