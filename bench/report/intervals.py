"""95% intervals of leaderboard cells and of their averages, from the per-sample records.

* accuracy % (zero-shot): the Wilson interval of the proportion of correct samples;
* VQA accuracy: a percentile bootstrap of the mean over the cell's samples;
* CIDEr: a percentile bootstrap that re-scores every resample, because CIDEr's idf comes from
  the evaluated set's references (tasks.cider_resampling); this needs the task's references,
  read from its data as `bench run` read them;
* averages over tasks: each task's samples are resampled on their own (they are separate test
  sets) and the resampled means averaged;
* a cell aggregate (tasks/cell_aggregates.py, POPE's mean F1 over splits): a percentile bootstrap
  of the aggregate itself, recomputed on every resample, each stratum (split) resampled on its own.

Every bootstrap draws its resamples from a fixed seed, so the same records give the same bounds.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from bench.report.cell_values import CellValues
from bench.report.statistics import RESAMPLES, percentile_interval, resample_counts, weighted_means, wilson

Cell = tuple[str, str, str]  # (threat, task column, encoder): a leaderboard cell (bench.report.leaderboard)
Rescore = Callable[[np.ndarray], np.ndarray]  # resample counts (B, n) -> per-sample scores (B, n)
NO_INTERVAL = (float("nan"), float("nan"))


def task_references(task_column: str, data_root: str | None) -> dict[str, list[str]]:
    """The reference captions of a captioning task column ("tiny-llava:tiny-captions"), read from
    the suite that defines the task."""
    from bench.suites import load_task, suite_of_task

    name = task_column.rsplit(":", 1)[-1]
    task = load_task(suite_of_task(name), name, data_root)
    return task.references(list(task.items))


class CellIntervals:
    """The intervals of one leaderboard's cells; CIDEr tasks load their references on first use."""

    def __init__(self, samples: pd.DataFrame, cells: dict[Cell, pd.Series], metrics: dict[str, str],
                 accuracy: str, data_root: str | None = None, resamples: int = RESAMPLES) -> None:
        self.samples, self.cells, self.metrics = samples, cells, metrics
        self.accuracy, self.data_root, self.resamples = accuracy, data_root, resamples
        self._rescorers: dict[Cell, Rescore] = {}
        self._loaded: set[str] = set()
        self.values = CellValues(samples, cells)  # cells whose task names an aggregate (POPE's F1)

    def cell(self, cell: Cell) -> tuple[float, float]:
        scores = self.cells.get(cell)
        if scores is None or scores.empty:
            return NO_INTERVAL
        if self.values.aggregate(cell[1]) is not None:
            return percentile_interval(self.resampled_means(cell, self.values.counts(cell, self.resamples)))
        if self.metrics[cell[1]] == self.accuracy:
            low, high = wilson(int((scores > 0).sum()), len(scores))
            return 100 * low, 100 * high
        return percentile_interval(self.resampled_means(cell, resample_counts(len(scores), self.resamples)))

    def average(self, cells: list[Cell]) -> tuple[float, float]:
        """The interval of the mean of the cells' scores, each task resampled on its own."""
        if any(self.cells.get(c) is None for c in cells):
            return NO_INTERVAL
        means = [self.resampled_means(c, resample_counts(len(self.cells[c]), self.resamples, (0, k)))
                 for k, c in enumerate(cells)]
        return percentile_interval(np.mean(means, axis=0))

    def resampled_means(self, cell: Cell, counts: np.ndarray) -> np.ndarray:
        """The cell's mean score in each resample (counts over the cell's samples, in its order); for a
        task with a cell aggregate, the aggregate in each resample."""
        if self.values.aggregate(cell[1]) is not None:
            return self.values.resampled(cell, counts)
        scores = self.cells[cell].to_numpy(dtype=np.float64)
        if self.metrics[cell[1]] == "CIDEr":
            scores = self.rescorer(cell)(counts)
        return weighted_means(scores, counts)

    def rescorer(self, cell: Cell) -> Rescore:
        task = cell[1]
        if task not in self._loaded:
            self._rescorers.update(cider_rescorers(self.samples, self.cells, task,
                                                   task_references(task, self.data_root)))
            self._loaded.add(task)
        return self._rescorers[cell]


def cider_rescorers(samples: pd.DataFrame, cells: dict[Cell, pd.Series], task: str,
                    references: dict[str, list[str]]) -> dict[Cell, Rescore]:
    """Per CIDEr cell of `task`, what re-scores its outputs in a resampled set: the references are
    tokenised once, and every cell's outputs together in one tokenizer call."""
    from tasks.cider_resampling import CiderResampler
    from tasks.metrics import CiderReferences

    outputs = cell_outputs(samples[samples["task"] == task])
    order = list(dict.fromkeys(samples.loc[samples["task"] == task, "id"]))  # as the runs saw them
    missing = [i for i in order if i not in references]
    if missing:
        from benchutil.errors import BenchError

        raise BenchError(f"the data of {task} has no references for sample {missing[0]!r}; give the --data-root "
                         f"the runs were made with")
    tokenised = CiderReferences({i: references[i] for i in order})
    texts = sorted({text for series in outputs.values() for text in series})
    tokens = tokenised.tokenize({str(k): text for k, text in enumerate(texts)})
    token_of = {text: tokens[str(k)] for k, text in enumerate(texts)}
    out: dict[Cell, Rescore] = {}
    for cell, series in outputs.items():
        ids = list(cells[cell].index)
        resampler = CiderResampler([tokenised.gts[i] for i in ids])
        candidates = [token_of[series[i]] for i in ids]
        out[cell] = lambda counts, r=resampler, c=candidates: r.scores(c, counts)
    return out


def cell_outputs(samples: pd.DataFrame) -> dict[Cell, pd.Series]:
    """Per cell, each sample's output text behind its score: the clean output, or the output of the
    attack run that scored lowest under that threat (ties: the first attack by name)."""
    out: dict[Cell, pd.Series] = {}
    for (encoder, task), group in samples.groupby(["encoder", "task"]):
        out[("clean", task, encoder)] = group.groupby("id")["clean_output"].first()
    attacked = samples[samples["eps"] > 0]
    for (encoder, task, label), group in attacked.groupby(["encoder", "task", "threat"]):
        worst = group.sort_values(["adv", "attack"], kind="stable").groupby("id").first()
        out[(label, task, encoder)] = worst["adv_output"]
    return out
