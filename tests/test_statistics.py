"""Intervals that cover, a paired test checked by hand, and bench compare on real records."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.cli.main import main
from bench.report.statistics import mcnemar_exact, paired, wilson

ROOT = Path(__file__).resolve().parent.parent


def test_wilson_covers_the_true_rate_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    for rate, n in ((0.3, 100), (0.05, 100), (0.9, 50)):
        hits = 0
        for successes in rng.binomial(n, rate, size=2000):
            low, high = wilson(int(successes), n)
            hits += low <= rate <= high
        # binomial coverage oscillates with n and the rate: Wilson's stays within a few points of 95%
        assert 0.92 <= hits / 2000 <= 0.98, (rate, n, hits / 2000)


def test_wilson_by_hand():
    low, high = wilson(0, 100)  # zero successes: the interval still has width, Wald's would not
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(0.0370, abs=1e-4)
    assert wilson(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)


def test_mcnemar_exact_by_hand():
    # 7 samples right under A only, 1 under B only: 2 * P(X <= 1), X ~ Bin(8, 1/2) = 2 * 9 / 256
    assert mcnemar_exact(7, 1) == pytest.approx(2 * (1 + 8) / 256)
    assert mcnemar_exact(1, 7) == mcnemar_exact(7, 1)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 2**10)
    result = paired(np.array([100.0] * 7 + [0.0] + [100.0] * 2), np.array([0.0] * 7 + [100.0] + [100.0] * 2), True)
    assert (result.only_a, result.only_b, result.n) == (7, 1, 10) and result.difference == pytest.approx(60.0)
    assert result.low <= result.difference <= result.high and math.isclose(result.p_value, mcnemar_exact(7, 1))


def test_compare_on_the_committed_records(capsys):
    assert main(["compare", str(ROOT / "results" / "tiny" / "runs"), "--encoders", "sim-clip-4,fare-4",
                 "--task", "tiny-colour", "--eps", "4/255"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("tiny-colour Linf 4/255 (accuracy %, n = 100): sim-clip-4 68.0 vs fare-4 67.0")
    assert "McNemar p = 1 (3 right under sim-clip-4 only, 2 under fare-4 only)" in line  # exact: 2 * P(X <= 2 | 5)


def test_compare_refuses_other_samples_and_unknown_names(tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(ROOT / "results" / "tiny" / "runs", runs, ignore=shutil.ignore_patterns("*llava*"))
    fare = next(p for p in runs.iterdir() if p.name.startswith("fare-4__tiny-colour__aa__4-255"))
    lines = (fare / "records.jsonl").read_text().splitlines()
    (fare / "records.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # one sample fewer
    assert main(["compare", str(runs), "--encoders", "sim-clip-4,fare-4", "--task", "tiny-colour",
                 "--eps", "4/255"]) == 2
    assert "different samples" in capsys.readouterr().err
    assert main(["compare", str(runs), "--encoders", "sim-clip-4,far-4"]) == 2
    assert "did you mean 'fare-4'" in capsys.readouterr().err
    assert main(["compare", str(runs), "--encoders", "sim-clip-4"]) == 2
    assert "needs two different names" in capsys.readouterr().err
