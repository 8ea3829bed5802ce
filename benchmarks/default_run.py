"""Wall time of the README's main job: `bench run --encoder clip --attack apgd --eps 4/255`.

    python -m benchmarks.default_run

Runs it twice in fresh processes: with an empty BENCH_HOME (world generated first) and
with the world cached. Writes benchmarks/out/default_run.json. Budget: under 2 minutes.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import environment, print_table, write_json

COMMAND = ["-m", "bench", "run", "--encoder", "clip", "--attack", "apgd", "--eps", "4/255"]


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "BENCH_HOME": str(Path(tmp) / "home")}
        for label in ("empty cache", "world cached"):
            out = Path(tmp) / f"results-{len(rows)}"
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, *COMMAND, "--out", str(out)], env=env, capture_output=True,
                                  text=True)
            seconds = time.perf_counter() - start
            if proc.returncode != 0:
                raise SystemExit(proc.stderr[-2000:])
            rows.append({"case": label, "seconds": seconds})
            print(proc.stdout)
    print_table(rows, ["case", "seconds"])
    write_json(Path("benchmarks/out/default_run.json"),
               {"environment": environment(), "command": "bench " + " ".join(COMMAND[2:]), "rows": rows})


if __name__ == "__main__":
    main()
