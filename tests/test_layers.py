"""The architecture holds: import-linter's contracts (pyproject.toml) pass, and bench/ shows its layers."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_layers_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_bench_keeps_its_modules_in_its_layers():
    top = sorted(p.name for p in (ROOT / "bench").glob("*.py"))
    assert len(top) <= 8, top
    for package in ("cli", "report", "run", "encoders", "vlm", "train", "tiny"):
        init = ROOT / "bench" / package / "__init__.py"
        assert init.is_file() and init.read_text().startswith('"""'), package  # each says what it owns
