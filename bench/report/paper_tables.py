"""A paper's published tables beside our runs, cell by cell: their layout, and the whole paper.

For every (table, threat, VLM, encoder, column) of a paper (bench.report.published) a cell holds
the published value and ours: the cell `bench leaderboard` computes from the runs under the
results folders, ours minus published, and whether the published value lies in our interval.
Which runs make our side of a cell: bench.report.paper_ours.

On the tiny suite the same tables are built with the tiny names (tiny zoo, tiny-llava, tiny
tasks): our numbers only, the paper having published none for them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.leaderboard import base_task, load_samples
from bench.report.published import NOT_TRANSCRIBED, Paper, Published, Row, Table
from bench.run.store import no_finished_runs
from benchutil.errors import BenchError

SUITES = ("paper", "tiny")
CLEAN = "clean"


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
    from bench.report.paper_ours import OurRuns, fill_ours

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
