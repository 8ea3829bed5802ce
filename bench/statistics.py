"""How far a cell can be trusted: Wilson intervals for accuracies, and paired comparisons of two
encoders on the same samples (McNemar's exact test, a paired bootstrap for the difference).

Everything is computed from the per-sample records; nothing is re-run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion, in [0, 1] (better than Wald at small n
    and near 0 or 1, where robust accuracies live)."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)  # (rounding can leave 1e-18 at 0 successes)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: samples right under A only and
    right under B only (a binomial test of only_a against Bin(only_a + only_b, 1/2))."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class Paired:
    n: int
    mean_a: float
    mean_b: float
    difference: float  # mean_a - mean_b
    low: float  # 95% paired-bootstrap interval of the difference
    high: float
    only_a: int  # accuracies: right under A only
    only_b: int
    p_value: float | None  # McNemar for accuracies; None for scores without a paired exact test here


def paired(a: np.ndarray, b: np.ndarray, binary: bool, resamples: int = 2000, seed: int = 0) -> Paired:
    """Compare two encoders' per-sample scores on the same samples (rows aligned)."""
    diff = a - b
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(diff), size=(resamples, len(diff)))
    boot = diff[picks].mean(axis=1)
    low, high = np.quantile(boot, [0.025, 0.975])
    only_a = int(((a > 0) & (b == 0)).sum()) if binary else 0
    only_b = int(((b > 0) & (a == 0)).sum()) if binary else 0
    return Paired(len(diff), float(a.mean()), float(b.mean()), float(diff.mean()), float(low), float(high),
                  only_a, only_b, mcnemar_exact(only_a, only_b) if binary else None)
