"""Bootstrap intervals: CIDEr re-scored per resample equals pycocoevalcap on the resampled set,
bootstrap intervals cover, the sign-flip test by hand, and --ci on the committed records."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cli.main import main
from bench.report.intervals import CellIntervals
from bench.report.leaderboard import ACCURACY, cell_samples, load_samples
from bench.report.statistics import percentile_interval, resample_counts, sign_flip_p, weighted_means
from tasks.cider_resampling import CiderResampler

ROOT = Path(__file__).resolve().parent.parent
WORDS = "a the red blue shape circle square on of background noisy smooth green big small two".split()


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 9)))


def test_cider_of_a_resample_equals_pycocoevalcap_on_the_resampled_set():
    from pycocoevalcap.cider.cider_scorer import CiderScorer

    rng = random.Random(0)
    n = 40
    references = [[_sentence(rng) for _ in range(rng.randint(1, 5))] for _ in range(n)]
    candidates = [_sentence(rng) if i % 7 else "" for i in range(n)]  # empty outputs too
    counts = np.vstack([np.ones(n), resample_counts(n, 5, seed=1)])
    ours = CiderResampler(references).scores(candidates, counts)
    for row, scores in zip(counts, ours):
        scorer = CiderScorer(n=4, sigma=6.0)
        drawn = [i for i in range(n) for _ in range(int(row[i]))]  # a sample drawn twice is two documents
        for i in drawn:
            scorer += (candidates[i], references[i])
        mean, per_sample = scorer.compute_score()
        np.testing.assert_allclose(scores[drawn], per_sample * 100, rtol=0, atol=1e-9)
        assert weighted_means(scores, row[None])[0] == pytest.approx(mean * 100, abs=1e-9)


def test_bootstrap_intervals_cover_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    levels = np.array([0.0, 30.0, 60.0, 100.0])  # VQA accuracy's per-sample values
    weights = np.array([0.5, 0.1, 0.1, 0.3])
    truth = float(levels @ weights)
    cells = 400
    hits = 0
    for k in range(cells):
        scores = rng.choice(levels, size=100, p=weights)
        low, high = percentile_interval(weighted_means(scores, resample_counts(100, 1000, seed=k)))
        hits += low <= truth <= high
    assert 0.91 <= hits / cells <= 0.98, hits / cells


def test_sign_flip_test_by_hand():
    # three equal differences: of the 8 sign patterns only all-plus and all-minus reach |sum| = 3
    assert sign_flip_p(np.array([1.0, 1.0, 1.0, 0.0])) == pytest.approx(2 / 8)
    assert sign_flip_p(np.array([5.0, -5.0])) == 1.0 and sign_flip_p(np.zeros(4)) == 1.0
    many = np.full(40, 2.0)  # Monte Carlo beyond 16 non-zero differences: never 0
    assert 0 < sign_flip_p(many) < 1e-3


@pytest.fixture(scope="module")
def committed():
    samples = load_samples(ROOT / "results" / "tiny" / "runs")
    cells, _ = cell_samples(samples)
    metric = samples.groupby("task")["metric"].first().to_dict()
    return samples, cells, metric


def test_cider_resampling_reproduces_the_recorded_scores(committed):
    """With every sample drawn once, the re-scored cell is the run's own CIDEr (pycocoevalcap)."""
    samples, cells, metric = committed
    intervals = CellIntervals(samples, cells, metric, ACCURACY)
    for cell in [("clean", "tiny-llava:tiny-captions", "clip"), ("Linf 4/255", "tiny-llava:tiny-captions", "fare-4")]:
        recorded = cells[cell]
        rescored = intervals.rescorer(cell)(np.ones((1, len(recorded))))[0]
        np.testing.assert_allclose(rescored, recorded.to_numpy(), atol=1e-5)  # records keep 6 decimals


def test_leaderboard_ci_bounds_every_cell_and_average(tmp_path):
    out = tmp_path / "table.csv"
    assert main(["leaderboard", str(ROOT / "results" / "tiny" / "runs"), "--ci", "--format", "csv",
                 "--out", str(out)]) == 0
    table = pd.read_csv(out, index_col=0)
    values = [c for c in table.columns if not c.endswith((" lo", " hi", " n"))]
    # 4 classification tasks x 100 samples
    assert (table["avg Linf 4/255 n"] == 400).all() and (table["tiny-llava:tiny-captions CIDEr clean n"] == 50).all()
    assert {"avg Linf 4/255", "tiny-llava:tiny-captions CIDEr Linf 4/255", "tiny-llava:tiny-vqa (official-2017) VQA acc Linf 4/255",
            "tiny-llava:tiny-pope F1 Linf 4/255"} <= set(values)
    for column in values:
        low, high = table[f"{column} lo"], table[f"{column} hi"]
        assert ((low <= table[column] + 0.05) & (table[column] <= high + 0.05)).all(), column
    column = "tiny-llava:tiny-captions CIDEr Linf 4/255"
    captions = table[f"{column} hi"] - table[f"{column} lo"]
    assert (captions > 5).all()  # 50 captions: CIDEr's interval is wide, never a point


def test_compare_tests_cider_and_vqa_with_the_sign_flip_test(capsys):
    assert main(["compare", str(ROOT / "results" / "tiny" / "runs"), "--encoders", "sim-clip-4,fare-4",
                 "--task", "tiny-llava:tiny-captions", "--eps", "4/255"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("tiny-llava:tiny-captions Linf 4/255 (CIDEr, n = 50): sim-clip-4 92.9 vs fare-4 88.8")
    assert "sign-flip p = " in line
