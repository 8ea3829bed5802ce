"""The GPU check script runs end to end (tiny shapes on a CPU) and writes its estimate."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.long
def test_gpu_suite_smoke_runs_on_cpu():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_suite", "--device", "cpu"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads((ROOT / "benchmarks" / "out" / "gpu_suite_cpu.json").read_text())
    estimate = result["estimate"]
    assert estimate["total GPU-hours"] > 0 and estimate["wall hours on 8 GPUs"] == estimate["total GPU-hours"] / 8
    assert result["rows"][0]["model share %"] > 0 and result["rows"][0]["img-it/s"] > 0
