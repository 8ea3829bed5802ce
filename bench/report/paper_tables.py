"""A paper's published tables beside our runs, cell by cell.

For every (table, threat, VLM, encoder, column) of a paper (bench.report.published) a cell holds
the published value and ours: the cell `bench leaderboard` computes from the runs under the
results folders (load_samples, cell_samples, accuracy_table with its 95% intervals), ours minus
published, and whether the published value lies in our interval.

Which of our runs make a cell: the run's encoder, VLM and task are the paper's (as our names
say them), its norm is Linf at the paper's eps, and its VLM protocol is the table's
(`--protocol simclip` for Sim-CLIP's table, `robustvlm` for FARE's; zero-shot classification
has none). Several precisions of the same protocol may exist; the paper's is preferred. Where
only runs of another protocol exist at that eps, ours is shown, marked with its protocol, and
not compared. A clean cell takes every run of its encoder and task, as the leaderboard does.

On the tiny suite the same tables are built with the tiny names (tiny zoo, tiny-llava, tiny
tasks): our numbers only, the paper having published none for them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.leaderboard import (
    ACCURACY,
    accuracy_table,
    cell_samples,
    load_samples,
    threat_label,
)
from bench.report.published import NOT_TRANSCRIBED, Paper, Published, Row, Table
from bench.run.store import no_finished_runs
from benchutil.errors import BenchError
from tasks.protocols import VLM_PROTOCOLS

SUITES = ("paper", "tiny")
CLEAN = "clean"
PRECISIONS = ("fp32", "fp16", "bf16", "tf32")
CHOSEN = "chosen"  # the threat our chosen runs of a cell are relabelled to before the leaderboard sees them


@dataclass(frozen=True)
class Slot:
    """A column of a table as one suite names it."""
    label: str
    metric: str
    task: str | None  # one task, or None for an average of `members`
    members: tuple[str, ...]
    index: int | None  # the paper's column it stands for (None: a tiny-only member of an average)
    samples: int | None


@dataclass(frozen=True)
class Line:
    """A row of a table as one suite names it."""
    group: str
    vlm: str | None
    label: str
    encoder: str | None
    note: str
    row: Row | None  # the published values (paper suite)
    samples: dict[str, int]


@dataclass
class PaperCell:
    table: str
    threat: str  # "clean" or the eps label ("4/255")
    group: str
    vlm: str | None
    row: str
    encoder: str | None
    column: str
    task: str | None
    members: tuple[str, ...]
    metric: str
    published: Published | None  # None on the tiny suite
    source: str
    setting: str  # how the paper ran this cell, in our words
    samples: int | None  # the paper's sample count
    ours: float | None = None
    lo: float | None = None
    hi: float | None = None
    n: int | None = None
    our_task: str | None = None  # the leaderboard's task column(s) and threat ours comes from
    our_threat: str | None = None
    same_protocol: bool = True
    missing: tuple[str, ...] = ()  # our tasks still to run for this cell
    fill: str | None = None  # the `bench run` command that fills it

    @property
    def difference(self) -> float | None:
        """Ours minus published, as both are printed (one decimal)."""
        if self.ours is None or not isinstance(self.published, float) or not self.same_protocol:
            return None
        return round(self.ours - self.published, 1)

    @property
    def verdict(self) -> str:
        if self.encoder is None:
            return "not in our zoo"
        if self.ours is None:
            return "not run"
        if self.published is None:
            return ""
        if self.published == NOT_TRANSCRIBED:
            return NOT_TRANSCRIBED
        if not self.same_protocol:
            return "other protocol"
        if self.lo is None or self.hi is None:
            return "no interval"
        return "in" if self.lo <= float(self.published) <= self.hi else "out"


@dataclass
class TableResult:
    paper: Paper
    table: Table
    suite: str
    slots: list[Slot]
    lines: list[Line]
    cells: list[PaperCell]
    notes: list[str] = field(default_factory=list)
    fills: list[str] = field(default_factory=list)  # the commands of fill_runs
    fill_runs: list[dict[str, Any]] = field(default_factory=list)  # the runs that fill its missing cells


# ---- the layout of a table on a suite ----------------------------------------------------------

def slots(table: Table, suite: str) -> list[Slot]:
    """The paper's columns on the paper suite; on the tiny suite their tiny stand-ins, each task
    once (COCO and Flickr30k are both tiny-captions), an average preceded by its members."""
    if suite == "paper":
        return [Slot(c.label, c.metric, c.task, c.average_of, k, c.samples) for k, c in enumerate(table.columns)]
    out: list[Slot] = []
    for k, column in enumerate(table.columns):
        if column.tiny_average_of:
            for member in column.tiny_average_of:
                if all(s.task != member for s in out):
                    out.append(Slot(member, column.metric, member, (), None, None))
            out.append(Slot(column.label, column.metric, None, column.tiny_average_of, k, None))
        elif column.tiny:
            same = next((s for s in out if s.task == column.tiny), None)
            if same is None:
                out.append(Slot(f"{column.label}: {column.tiny}", column.metric, column.tiny, (), k, None))
            else:  # one tiny task stands for several of the paper's columns
                out[out.index(same)] = Slot(same.label.replace(f": {column.tiny}", f" / {column.label}: {column.tiny}"),
                                            same.metric, same.task, (), same.index, None)
    return out


def lines(table: Table, suite: str) -> list[Line]:
    """The paper's rows on the paper suite; on the tiny suite those with a tiny stand-in, each
    (VLM, encoder) once (both VLMs are tiny-llava)."""
    out: list[Line] = []
    for group in table.groups:
        for row in group.rows:
            if suite == "paper":
                out.append(Line(group.label, group.vlm, row.label, row.encoder, row.note, row, group.samples))
                continue
            if row.tiny is None or (group.vlm is not None and group.tiny_vlm is None):
                continue
            vlm = group.tiny_vlm if group.vlm is not None else None
            if all((line.vlm, line.encoder) != (vlm, row.tiny) for line in out):
                out.append(Line(vlm or group.label, vlm, row.tiny, row.tiny, "", None, {}))
    return out


def eps_value(threat: str) -> float:
    """'4/255' -> 4/255 (the papers' radii are all n/255)."""
    numerator, _, denominator = threat.partition("/")
    return float(numerator) / float(denominator or 1)


def setting(table: Table, threat: str, vlm: str | None, samples: int | None) -> str:
    """How the paper ran a cell, in our flags."""
    parts = ["clean" if threat == CLEAN else f"Linf {threat}, --attack {table.attack}"]
    if table.protocol is not None and threat != CLEAN:
        parts.append(f"--protocol {table.protocol}")
    parts.append(f"{samples} samples" if samples else "every sample")
    parts.append(vlm or "the encoder alone")
    return ", ".join(parts)


def source(paper: Paper, table: Table, value: Published | None, threat: str) -> str:
    if value is None:
        return ""
    if value == NOT_TRANSCRIBED:
        where = f"{paper.repository} {table.file}" if table.file else paper.repository
        return f"in the paper ({paper.where}) only, {where} does not print it: not transcribed"
    return f"{paper.repository}@{paper.commit[:7]} {table.file}, '{table.sections.get(threat, '')}'"


def empty_cells(paper: Paper, table: Table, suite: str) -> tuple[list[Slot], list[Line], list[PaperCell]]:
    """Every cell of the table on the suite, with the published side filled in."""
    columns, rows = slots(table, suite), lines(table, suite)
    cells = []
    for threat in table.threats:
        for line in rows:
            for slot in columns:
                value = line.row.values[threat][slot.index] if line.row is not None and slot.index is not None else None
                samples = line.samples.get(slot.task or "", slot.samples) if suite == "paper" else None
                cells.append(PaperCell(table.id, threat, line.group, line.vlm, line.label, line.encoder, slot.label,
                                       slot.task, slot.members, slot.metric, value,
                                       source(paper, table, value, threat),
                                       setting(table, threat, line.vlm, samples), samples))
    return columns, rows, cells


# ---- ours ---------------------------------------------------------------------------------------

def base_task(column: str) -> str:
    """The leaderboard's task column without its VQA evaluator: 'llava-1.5-7b:vqav2 (openflamingo)' ->
    'llava-1.5-7b:vqav2'."""
    return column.split(" (", 1)[0]


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


# ---- the whole paper -----------------------------------------------------------------------------

def read_runs(results: list[Path], default: bool) -> pd.DataFrame | None:
    """The per-sample rows of every finished run (None where there are none yet: every cell is then
    'not run'). A results folder the user named must exist; the default one may not, yet."""
    folders = [r for r in results if r.exists()] if default else results
    for folder in folders:
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise BenchError(f"results directory {folder} {what}; give the folder bench run wrote (--out, default "
                             "runs/), e.g. results/tiny/runs")
    if not folders:
        return None
    try:
        return load_samples(folders)
    except BenchError as err:
        if str(err) == str(no_finished_runs(folders)):  # nothing run yet: the tables say what to run
            return None
        raise


def infer_suite(samples: pd.DataFrame | None) -> str:
    """tiny when every run is of a tiny task, else paper."""
    if samples is None:
        return "paper"
    tasks = {base_task(c).rsplit(":", 1)[-1] for c in samples["task"].unique()}
    return "tiny" if all(t.startswith("tiny-") for t in tasks) else "paper"


def paper_tables(paper: Paper, suite: str, samples: pd.DataFrame | None, table_ids: list[str] | None,
                 data_root: str | None, out: Path) -> list[TableResult]:
    from bench.report.paper_fill import command, fill_runs

    runs = OurRuns(samples, data_root)
    tables = [paper.table(t) for t in table_ids] if table_ids else list(paper.tables)
    results = []
    for table in tables:
        columns, rows, cells = empty_cells(paper, table, suite)
        result = TableResult(paper, table, suite, columns, rows, cells)
        if cells:
            fill_ours(result, runs)
            result.fill_runs = fill_runs(result, out)
            result.fills = [command(settings) for settings in result.fill_runs]
        results.append(result)
    return results
