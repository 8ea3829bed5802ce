"""What a leaderboard cell's number is: the mean of its per-sample scores, or the aggregate its
task's runs name (tasks/cell_aggregates.py: POPE's mean F1 over its splits), computed from the
cell's per-sample scores (bench.report.leaderboard.cell_samples) and the record fields the
aggregate reads. Also the bootstrap weights of a cell, drawn per stratum where the aggregate
has strata, so intervals and paired comparisons resample an aggregate as its task is built.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report.statistics import RESAMPLES, resample_counts, weighted_means
from tasks.cell_aggregates import AGGREGATES, CellAggregate, Facts

Cell = tuple[str, str, str]  # (threat, task column, encoder), as bench.report.intervals names it
AGGREGATE_COLUMN = "cell"  # load_samples' column naming the aggregate of a run's rows (absent: none has one)


def task_aggregates(samples: pd.DataFrame) -> dict[str, CellAggregate]:
    """Task column -> the aggregate its runs name (tasks whose runs name none are left out)."""
    if AGGREGATE_COLUMN not in samples:
        return {}
    named = samples.dropna(subset=[AGGREGATE_COLUMN]).groupby("task")[AGGREGATE_COLUMN].first()
    return {task: AGGREGATES[name] for task, name in named.items()}


class CellValues:
    """The cells of one leaderboard (as cell_samples gives them) and their numbers."""

    def __init__(self, samples: pd.DataFrame, cells: dict[Cell, pd.Series]) -> None:
        self.samples, self.cells = samples, cells
        self.aggregates = task_aggregates(samples)
        self._facts: dict[Cell, Facts] = {}

    def aggregate(self, task: str) -> CellAggregate | None:
        return self.aggregates.get(task)

    def facts(self, cell: Cell) -> Facts:
        """The aggregate's record fields per sample of the cell, in the cell's order."""
        if cell not in self._facts:
            _, task, encoder = cell
            fields = list(self.aggregates[task].fields)
            rows = self.samples[(self.samples["task"] == task) & (self.samples["encoder"] == encoder)]
            per_id = rows.groupby("id")[fields].first().reindex(self.cells[cell].index)
            self._facts[cell] = {f: per_id[f].to_numpy() for f in fields}
        return self._facts[cell]

    def value(self, cell: Cell) -> float:
        scores = self.cells[cell]
        aggregate = self.aggregate(cell[1])
        if aggregate is None:
            return float(scores.mean())
        return aggregate.value(scores.to_numpy(dtype=np.float64), self.facts(cell))

    def resampled(self, cell: Cell, counts: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
        """The cell's number in each row of `counts` (B, n); `scores` replaces the cell's own per-sample
        scores ((n,) or (B, n): a paired randomisation test swaps them between encoders)."""
        own = self.cells[cell].to_numpy(dtype=np.float64) if scores is None else scores
        aggregate = self.aggregate(cell[1])
        if aggregate is None:
            return weighted_means(own, counts)
        return aggregate.values(own, self.facts(cell), counts)

    def counts(self, cell: Cell, resamples: int = RESAMPLES) -> np.ndarray:
        """(resamples, n) bootstrap counts over the cell's samples: plain, or drawn within each
        stratum of its aggregate (each split of POPE keeps its size, as a separate test set)."""
        n = len(self.cells[cell])
        aggregate = self.aggregate(cell[1])
        if aggregate is None or aggregate.strata is None:
            return resample_counts(n, resamples)
        groups = self.facts(cell)[aggregate.strata]
        counts = np.zeros((resamples, n))
        for k, group in enumerate(sorted(set(groups.tolist()))):
            mine = np.flatnonzero(groups == group)
            counts[:, mine] = resample_counts(len(mine), resamples, (0, k))
        return counts


def cell_value(samples: pd.DataFrame, cells: dict[Cell, pd.Series], cell: Cell) -> float:
    """One cell's number as the leaderboard shows it (before rounding)."""
    return CellValues(samples, cells).value(cell)
