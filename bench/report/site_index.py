"""The index of `bench site` as a leaderboard: one tab per threat (norm and eps, as
bench.report.leaderboard.threat_label names it), its rows ranked by that threat's robust average.

A tab's first numeric columns are the clean and robust averages (bench leaderboard's 'avg' columns:
zero-shot accuracy over the classification tasks but ImageNet); where a threat has no average (one
classification task, or VLM tasks only) its first task column ranks instead, and its header says
which. Ranks are competition ranks on the numbers as shown (one decimal): equal numbers share a
rank and the next rank skips ("1, 2, 2, 4"); an encoder without a number at that threat is listed
last, unranked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from bench.report.encoder_facts import EncoderFacts
from bench.report.site_audit import AuditWarning
from bench.run.eps import NORM_LABELS

if TYPE_CHECKING:  # site.py imports this module: the names are only annotations here
    from bench.report.site import Column, IndexCell

CLEAN = "clean"


@dataclass(frozen=True)
class TaskPair:
    head: str  # the column's name less its threat ("tiny-shape", "tiny-llava:tiny-vqa VQA acc")
    kind: str
    clean: Column | None
    robust: Column | None  # None in the clean tab


@dataclass
class Row:
    rank: int | None
    encoder: str
    page: str
    facts: EncoderFacts
    warnings: list[AuditWarning]
    audit_note: int | None  # the footnote its flag links to
    clean: IndexCell | None
    robust: IndexCell | None
    cells: list[IndexCell]

    @property
    def flag_title(self) -> str:  # the flag's tooltip
        return "bench audit warned: " + "; ".join(w.line for w in self.warnings)

    @property
    def search(self) -> str:  # what the search box matches, lower case as the script compares
        return f"{self.encoder} {self.facts.search_text}".lower()


@dataclass
class Tab:
    threat: str  # "Linf 4/255", or "clean" where no run was attacked
    index: int
    ranked_by: Column
    clean_average: Column | None  # the clean counterpart of ranked_by
    pairs: list[TaskPair]
    rows: list[Row]

    @property
    def ranked_by_head(self) -> str:
        return "avg" if self.ranked_by.task is None else self.ranked_by.head


def threats_in_order(cols: list[Column], eps_of: dict[str, float]) -> list[str]:
    """The attacked threats, L-inf first then L2 (RobustBench's order), the largest eps first (the
    headline threat opens the page), then by label (plain before bf16 / robustvlm variants)."""
    norms = list(NORM_LABELS.values())
    labels = list(dict.fromkeys(c.eps_label for c in cols if c.eps_label != CLEAN))

    def key(label: str) -> tuple[int, float, str]:
        norm = label.split(" ", 1)[0]
        return (norms.index(norm) if norm in norms else len(norms), -eps_of.get(label, 0.0), label)

    return sorted(labels, key=key) or [CLEAN]


def ranking_column(cols: list[Column], threat: str) -> Column:
    """The threat's average, else its first classification column, else its first column."""
    mine = [c for c in cols if c.eps_label == threat]
    return next((c for c in mine if c.task is None), None) or next(
        (c for c in mine if c.kind == "classification"), mine[0])


def task_pairs(cols: list[Column], threat: str) -> list[TaskPair]:
    """Per task run under the threat: its clean column and its robust one (in the table's order)."""
    clean_of = {c.head: c for c in cols if c.eps_label == CLEAN and c.task is not None}
    if threat == CLEAN:
        return [TaskPair(c.head, c.kind, c, None) for c in clean_of.values()]
    return [TaskPair(c.head, c.kind, clean_of.get(c.head), c) for c in cols
            if c.eps_label == threat and c.task is not None]


def competition_ranks(values: list[float]) -> list[int | None]:
    """1 + the number of strictly better values; NaN ranks nothing."""
    present = [v for v in values if not math.isnan(v)]
    return [None if math.isnan(v) else 1 + sum(other > v for other in present) for v in values]


def order_rows(rows: list[Row], table: pd.DataFrame, tab: Tab) -> list[Row]:
    """Ranked rows first by rank; ties by the clean number (higher first), then by name."""
    def clean_value(row: Row) -> float:
        value = table.loc[row.encoder, tab.clean_average.name] if tab.clean_average is not None else float("nan")
        return -1e9 if pd.isna(value) else -float(value)

    return sorted(rows, key=lambda r: (r.rank is None, r.rank or 0, clean_value(r), r.encoder))


def has_numbers(table: pd.DataFrame, encoder: str, columns: list[Column]) -> bool:
    return any(not pd.isna(table.loc[encoder, c.name]) for c in columns)
