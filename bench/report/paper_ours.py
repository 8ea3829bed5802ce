"""Our side of a paper's cells: which of our runs make each cell, and their values.

Which runs make a cell: the run's encoder, VLM and task are the paper's (as our names say them),
its norm is Linf at the paper's eps, and its VLM protocol is the table's (`--protocol simclip` for
Sim-CLIP's table, `robustvlm` for FARE's; zero-shot classification has none, but a zero-shot
table's sample order must be the run's: ΔCLIP's table takes `--sample-order dvd` runs only).
Several precisions of the same protocol may exist; the paper's is preferred. Where only runs of
another protocol exist at that eps, ours is shown, marked with its protocol, and not compared. A
clean cell takes every run of its encoder and task, as the leaderboard does. The values are the
leaderboard's (load_samples, cell_samples, accuracy_table with its 95% intervals).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from bench.report.leaderboard import ACCURACY, accuracy_table, base_task, cell_samples, threat_label
from bench.report.paper_tables import CLEAN, TableResult, eps_value
from bench.report.published import Table
from benchutil.errors import BenchError
from tasks.protocols import VLM_PROTOCOLS

PRECISIONS = ("fp32", "fp16", "bf16", "tf32")
CHOSEN = "chosen"  # the threat our chosen runs of a cell are relabelled to before the leaderboard sees them


def task_key(vlm: str | None, task: str) -> str:
    """The leaderboard's task column of a task (bench.report.leaderboard.task_column)."""
    return f"{vlm}:{task}" if vlm else task


@dataclass(frozen=True)
class Choice:
    task_column: str
    threat: str  # the leaderboard's threat label of the runs chosen
    same_protocol: bool


class OurRuns:
    """The leaderboard's cells of the runs under the results folders, and which of them make a
    paper's cell."""

    def __init__(self, samples: pd.DataFrame | None, data_root: str | None = None) -> None:
        self.samples, self.data_root = samples, data_root
        keys = list(cell_samples(samples)[0]) if samples is not None else []
        self.threats: dict[tuple[str, str], set[str]] = {}  # (task column, encoder) -> threats with a cell
        for threat, column, encoder in keys:
            self.threats.setdefault((column, encoder), set()).add(threat)
        self.metric = samples.groupby("task")["metric"].first().to_dict() if samples is not None else {}

    def choose(self, vlm: str | None, task: str, encoder: str, threat: str, table: Table) -> Choice | None:
        """Our cell for (VLM, task, encoder, threat) under the table's protocol, else under another
        protocol at the same eps (marked), else None."""
        wanted = task_key(vlm, task)
        columns = sorted(c for c, e in self.threats if e == encoder and base_task(c) == wanted)
        if table.protocol is None:  # zero-shot: only runs of the paper's sample order drew the paper's samples
            order = table.run.get("sample_order")
            columns = [c for c in columns if c == (f"{wanted} ({order})" if order else wanted)]
        if threat == CLEAN:
            return next((Choice(c, CLEAN, True) for c in columns), None)
        accepted = accepted_threats(threat, table)
        for column in columns:
            present = self.threats[(column, encoder)]
            for label in accepted:
                if label in present:
                    return Choice(column, label, True)
        prefix = threat_label({"eps": eps_value(threat), "norm": "linf"}).split(" ")
        for column in columns:
            others = sorted(t for t in self.threats[(column, encoder)] if t.split(" ")[:2] == prefix)
            if others:  # zero-shot classification has no VLM protocol: any of them is the paper's
                return Choice(column, others[0], table.protocol is None)
        return None


def accepted_threats(threat: str, table: Table) -> list[str]:
    """The leaderboard's threat labels of runs under the table's protocol at that eps, the paper's
    precision first (zero-shot classification: any protocol)."""
    precisions = [table.precision, *(p for p in PRECISIONS if p != table.precision)]
    protocols = [table.protocol] if table.protocol is not None else list(VLM_PROTOCOLS)
    labels = [threat_label({"eps": eps_value(threat), "norm": "linf", "precision": precision, "protocol": protocol,
                            "early_stop": None})
              for precision in precisions for protocol in protocols]
    return list(dict.fromkeys(labels))


def fill_ours(result: TableResult, runs: OurRuns) -> None:
    """Each cell's value, interval and sample count from the leaderboard's table of the chosen runs."""
    if runs.samples is None:
        for cell in result.cells:
            if cell.encoder is not None:
                cell.missing = (cell.task,) if cell.task else cell.members
        return
    chosen: dict[tuple[str, str, str], str] = {}  # (task column, encoder, chosen label) -> leaderboard threat
    pairs: set[tuple[str, str]] = set()  # (task column, encoder) of every cell with a value
    for cell in result.cells:
        if cell.encoder is None:
            continue
        tasks = [cell.task] if cell.task else list(cell.members)
        picks = {t: runs.choose(cell.vlm, t, cell.encoder, cell.threat, result.table) for t in tasks}
        cell.missing = tuple(t for t, pick in picks.items() if pick is None or not pick.same_protocol)
        if any(pick is None for pick in picks.values()):
            continue
        label = CLEAN if cell.threat == CLEAN else f"{CHOSEN} {cell.threat}"
        for pick in picks.values():
            pairs.add((pick.task_column, cell.encoder))
            if pick.threat != CLEAN:
                chosen[(pick.task_column, cell.encoder, label)] = pick.threat
        cell.our_task = ",".join(p.task_column for p in picks.values())
        cell.our_threat = ",".join(sorted({p.threat for p in picks.values()}))
        cell.same_protocol = all(p.same_protocol for p in picks.values())
    tables = leaderboard_tables(runs, chosen, pairs, result.notes)
    for cell in result.cells:
        if cell.our_task is None:
            continue
        label = CLEAN if cell.threat == CLEAN else f"{CHOSEN} {cell.threat}"
        first = cell.our_task.split(",")[0]
        table = tables.get(group_of(first, runs))
        name = None if table is None else column_name(table, "avg" if cell.members else first, label, runs)
        if name is None or pd.isna(table.at[cell.encoder, name]):
            continue
        cell.ours = float(table.at[cell.encoder, name])
        cell.lo, cell.hi = (_number(table, cell.encoder, f"{name} {bound}") for bound in ("lo", "hi"))
        count = _number(table, cell.encoder, f"{name} n")
        cell.n = None if count is None else int(count)


def group_of(task_column: str, runs: OurRuns) -> str:
    """Zero-shot tasks share one leaderboard table (their average needs them together); each
    captioning / VQA task has its own, so one task's missing references leave the others' intervals."""
    return ACCURACY if runs.metric.get(task_column) == ACCURACY else task_column


def leaderboard_tables(runs: OurRuns, chosen: dict[tuple[str, str, str], str], pairs: set[tuple[str, str]],
                       notes: list[str]) -> dict[str, pd.DataFrame]:
    """accuracy_table (with 95% intervals) of the runs the cells chose, one per task group.

    Only the (task column, encoder) pairs of the cells enter. Their chosen attacked runs are
    relabelled to one threat per eps, so the leaderboard's cell (and, for the zero-shot average, its
    mean over tasks) is exactly theirs; their other attacked runs still give their clean scores (a
    clean cell takes every run of its encoder and task, as in the leaderboard) but no attacked cell."""
    samples = runs.samples
    samples = samples[pd.MultiIndex.from_arrays([samples["task"], samples["encoder"]]).isin(list(pairs))]
    threat, kept = samples["threat"].copy(), samples["eps"] == 0
    for (column, encoder, label), original in chosen.items():
        rows = (samples["task"] == column) & (samples["encoder"] == encoder) & (samples["threat"] == original)
        threat[rows] = label
        kept |= rows
    relabelled = samples.assign(threat=threat, eps=samples["eps"].where(kept, 0.0))
    groups: dict[str, set[str]] = {}
    for column, _ in pairs:
        groups.setdefault(group_of(column, runs), set()).add(column)
    out = {}
    for group, columns in sorted(groups.items()):
        subset = relabelled[relabelled["task"].isin(columns)]
        try:
            out[group] = accuracy_table(subset, ci=True, data_root=runs.data_root)
        except BenchError as err:  # CIDEr's intervals re-score the references: the paper suite's data
            what = "zero-shot classification" if group == ACCURACY else group
            notes.append(f"no 95% intervals for {what}: {err}")
            out[group] = accuracy_table(subset)
    return out


def column_name(table: pd.DataFrame, task: str, label: str, runs: OurRuns) -> str | None:
    """The leaderboard's column of (task, threat): 'TASK METRIC THREAT' for captioning / VQA, 'TASK
    THREAT' for zero-shot tasks and 'avg THREAT' for their average."""
    metric = runs.metric.get(task)
    for name in (f"{task} {metric} {label}", f"{task} {label}"):
        if name in table.columns:
            return name
    return None


def _number(table: pd.DataFrame, encoder: str, column: str) -> float | None:
    if column not in table.columns:
        return None
    value = table.at[encoder, column]
    return None if pd.isna(value) or (isinstance(value, float) and math.isnan(value)) else float(value)
