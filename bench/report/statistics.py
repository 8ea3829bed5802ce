"""How far a cell can be trusted: Wilson intervals for accuracies, percentile-bootstrap intervals
for mean scores, and paired comparisons of two encoders on the same samples (McNemar's exact test,
a paired bootstrap for the difference).

Everything is computed from the per-sample records; nothing is re-run. A bootstrap resample is a
row of counts (how often each sample is drawn), so a metric whose weights depend on the whole
set (CIDEr's idf) can re-score each resample (bench.report.intervals).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
RESAMPLES = 2000  # bootstrap resamples: the 2.5% and 97.5% quantiles move by < 0.1 point beyond this


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


EXACT_FLIPS = 16  # up to this many non-zero differences the sign-flip test enumerates every flip


def sign_flip_p(diff: np.ndarray, resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of the paired randomisation test: under "A and B are exchangeable" each
    per-sample difference keeps its size but its sign is a coin flip. Exact (every flip) for up to
    EXACT_FLIPS non-zero differences, else Monte Carlo with the +1 correction (never 0).
    CIDEr's per-sample scores may be swapped between encoders: its idf depends on the references only."""
    nonzero = diff[diff != 0]
    if len(nonzero) == 0:
        return 1.0
    observed = abs(nonzero.sum()) * (1 - 1e-12)  # rounding: flips that equal the observed sum count
    if len(nonzero) <= EXACT_FLIPS:
        signs = 1 - 2 * ((np.arange(2 ** len(nonzero))[:, None] >> np.arange(len(nonzero))) & 1)
        return float((np.abs(signs @ nonzero) >= observed).mean())
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(resamples, len(nonzero)))
    return float((1 + (np.abs(signs @ nonzero) >= observed).sum()) / (resamples + 1))


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
    p_value: float  # McNemar's exact test for accuracies, the paired sign-flip test for scores


def resample_counts(n: int, resamples: int = RESAMPLES, seed: int | tuple[int, ...] = 0) -> np.ndarray:
    """(resamples, n) counts: row b says how often each of n samples is drawn (n draws with repeats)."""
    picks = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    rows = np.arange(resamples)[:, None] * n  # each resample counts into its own block of n bins
    return np.bincount((picks + rows).ravel(), minlength=resamples * n).reshape(resamples, n).astype(np.float64)


def weighted_means(scores: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each resample's mean score; `scores` per sample (n,) or per resample and sample (B, n)."""
    return (counts * scores).sum(axis=1) / counts.sum(axis=1)


def percentile_interval(values: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of bootstrap statistics."""
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)


def paired(a: np.ndarray, b: np.ndarray, binary: bool, resamples: int = RESAMPLES, seed: int = 0,
           difference_of_resamples: np.ndarray | None = None) -> Paired:
    """Compare two encoders' per-sample scores on the same samples (rows aligned).
    `difference_of_resamples`: the bootstrap distribution of mean(a) - mean(b) when the scores
    must be recomputed per resample (CIDEr); by default the per-sample scores are resampled."""
    diff = a - b
    boot = difference_of_resamples
    if boot is None:
        boot = weighted_means(diff, resample_counts(len(diff), resamples, seed))
    low, high = percentile_interval(boot)
    only_a = int(((a > 0) & (b == 0)).sum()) if binary else 0
    only_b = int(((b > 0) & (a == 0)).sum()) if binary else 0
    return Paired(len(diff), float(a.mean()), float(b.mean()), float(diff.mean()), float(low), float(high),
                  only_a, only_b, mcnemar_exact(only_a, only_b) if binary else sign_flip_p(diff))


SWAP_CHUNK = 256  # swap patterns evaluated at once (memory: chunk x samples)


def paired_statistic(a: np.ndarray, b: np.ndarray, statistic: Callable[[np.ndarray, np.ndarray], np.ndarray],
                     counts: np.ndarray, swaps: int = 10_000, seed: int = 0) -> Paired:
    """Compare two encoders on a statistic of the whole cell that is no mean of per-sample scores
    (POPE's F1: tasks/cell_aggregates.py). `statistic(scores, counts)`: scores (n,) or (B, n) and
    counts (B, n) -> (B,). The interval is the paired bootstrap over `counts` (the same resamples
    for both); the p-value the paired randomisation test: each sample's pair of scores is swapped
    between the encoders with probability 1/2 (for a mean this is the sign-flip test), Monte Carlo
    with the +1 correction."""
    n = len(a)
    ones = np.ones((1, n))
    value_a, value_b = float(statistic(a, ones)[0]), float(statistic(b, ones)[0])
    low, high = percentile_interval(statistic(a, counts) - statistic(b, counts))
    observed = abs(value_a - value_b) * (1 - 1e-12)  # rounding: swaps that equal the observed difference count
    if observed == 0:
        return Paired(n, value_a, value_b, 0.0, low, high, 0, 0, 1.0)
    rng, reached = np.random.default_rng(seed), 0
    for start in range(0, swaps, SWAP_CHUNK):
        flips = rng.random((min(SWAP_CHUNK, swaps - start), n)) < 0.5
        swapped = statistic(np.where(flips, b, a), ones) - statistic(np.where(flips, a, b), ones)
        reached += int((np.abs(swapped) >= observed).sum())
    return Paired(n, value_a, value_b, value_a - value_b, low, high, 0, 0, (1 + reached) / (swaps + 1))
