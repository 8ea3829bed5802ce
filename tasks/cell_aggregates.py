"""Leaderboard cells that are an aggregate of a task's records rather than the mean of their scores.

Most task kinds report the mean per-sample score (accuracy, CIDEr, VQA accuracy). A few
report a statistic of the whole set: POPE's F1 (tasks/pope_metrics.py) needs every sample's
predicted yes/no and label at once. Such a task kind names its aggregate in its settings
(`{"cell": NAME}`), which every run records in config.json; the reports (the summary at the
end of `bench run`, `bench leaderboard` in every format, its intervals, `bench compare`,
`bench site`) then compute the cell with it, from the record core's per-sample score
(clean, or the worst case under a threat) and the record fields the aggregate reads. Runs
whose settings name no aggregate keep the mean.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchutil.errors import BenchError
from tasks.pope_metrics import mean_f1_values

Facts = dict[str, np.ndarray]  # record field -> its value per sample, in the scores' order
# (scores (n,) or (B, n), facts, counts (B, n): how often each sample counts per row) -> (B,)
Values = Callable[[np.ndarray, Facts, np.ndarray], np.ndarray]
CELL_SETTING = "cell"  # the task setting that names the aggregate


@dataclass(frozen=True)
class CellAggregate:
    name: str
    fields: tuple[str, ...]  # the record fields it reads beside the score
    values: Values
    # A field whose groups are separate test sets (POPE's splits): a bootstrap resamples each
    # group on its own, as the leaderboard's averages over tasks resample each task.
    strata: str | None = None

    def value(self, scores: Sequence[float] | np.ndarray, facts: Facts) -> float:
        """The cell's number for these per-sample scores (every sample counted once)."""
        return float(self.values(np.asarray(scores, dtype=np.float64), facts, np.ones((1, len(scores))))[0])


AGGREGATES: dict[str, CellAggregate] = {
    "pope-mean-f1": CellAggregate("pope-mean-f1", ("pope_label", "split"), mean_f1_values, strata="split"),
}


def aggregate_of(task_settings: dict[str, Any] | None) -> CellAggregate | None:
    """The aggregate a run's task settings name; None: the mean of the per-sample scores."""
    name = (task_settings or {}).get(CELL_SETTING)
    if name is None:
        return None
    if name not in AGGREGATES:
        raise BenchError(f"a run's task_settings name the cell aggregate {name!r}, which this version does not "
                         f"know ({', '.join(AGGREGATES)}); report it with the version that wrote it")
    return AGGREGATES[name]


def record_facts(records: list[dict[str, Any]], aggregate: CellAggregate, where: str) -> Facts:
    """The aggregate's fields of each record, in order; a record without one is one line."""
    for record in records:
        missing = [f for f in aggregate.fields if f not in record]
        if missing:
            raise BenchError(f"{where}: record {record.get('id')!r} has no '{missing[0]}', which its task's cell "
                             f"({aggregate.name}) needs; delete the run folder and re-run it")
    return {f: np.array([record[f] for record in records]) for f in aggregate.fields}
