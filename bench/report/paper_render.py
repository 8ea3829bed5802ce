"""`bench paper`'s output: markdown in the paper's layout, or one row per cell as CSV / JSON.

Markdown prints each table as the papers' READMEs do, one table per threat: rows = VLM x encoder,
columns = the paper's datasets; each cell 'published · ours [95% interval] · ours - published ·
in / OUT'. After each table come its notes and the commands that fill the cells not run yet.
CSV and JSON give every field of every cell (its source, the paper's settings, our task column
and threat, the verdict and the cell's own fill command); JSON adds the paper and each table.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.paper_tables import CLEAN, PaperCell, TableResult
from bench.report.published import NOT_TRANSCRIBED
from benchutil.toml_text import suite_toml

FORMATS = ("md", "csv", "json")
OUTPUT_FORMAT = "robust-vlm-bench paper tables v1"
SHOWN_VERDICT = {"in": "in", "out": "OUT", "no interval": "no interval", "other protocol": "other protocol"}


def threat_heading(threat: str) -> str:
    return CLEAN if threat == CLEAN else f"Linf {threat}"


def our_text(cell: PaperCell) -> str:
    if cell.encoder is None:
        return "not in our zoo"
    if cell.ours is None:
        return "not run"
    text = f"{cell.ours:.1f}"
    if cell.lo is not None and cell.hi is not None:
        text += f" [{cell.lo:.1f}, {cell.hi:.1f}]"
    if cell.samples and cell.n is not None and cell.n != cell.samples:
        text += f" n={cell.n}"
    if not cell.same_protocol:
        text += f" ({other_protocol(cell)})"
    return text


def other_protocol(cell: PaperCell) -> str:
    """What sets our runs apart from the table's protocol: 'Linf 4/255 legacy-protocol' -> 'legacy-protocol'
    ('strict' where the label names nothing beyond the eps)."""
    prefix = threat_heading(cell.threat)
    labels = [t[len(prefix):].strip() if t.startswith(prefix) else t for t in (cell.our_threat or "").split(",")]
    return ",".join(label or "strict" for label in labels)


def cell_text(cell: PaperCell) -> str:
    """'85.6 · 83.1 [79.0, 87.2] · -2.5 · in'; the tiny suite's cells have no published side."""
    ours = our_text(cell)
    if cell.published is None:
        return ours
    published = "n/t" if cell.published == NOT_TRANSCRIBED else f"{float(cell.published):.1f}"
    text = f"{published} · {ours}"
    if cell.difference is not None:
        text += f" · {cell.difference:+.1f}"
    if cell.verdict in SHOWN_VERDICT:
        text += f" · {SHOWN_VERDICT[cell.verdict]}"
    return text


def _grid(result: TableResult, threat: str) -> str:
    cells = {(c.group, c.row, c.column): c for c in result.cells if c.threat == threat}
    rows = [{"VLM": line.group, "encoder": line.label,
             **{f"{slot.label} ({slot.metric})": cell_text(cells[(line.group, line.label, slot.label)])
                for slot in result.slots}}
            for line in result.lines]
    return pd.DataFrame(rows).to_markdown(index=False, stralign="left")


def _table_markdown(result: TableResult) -> list[str]:
    table, paper = result.table, result.paper
    out = [f"## {paper.name} / {table.id}: {table.title}", ""]
    if not result.cells:
        return out + [f"No tiny replica: no row of this table has a tiny stand-in ({table.layout}).", ""]
    if result.suite == "paper":
        out += [f"Published: {table.layout.rstrip('.')}.", f"The paper's code: {table.evaluation}", ""]
    if any(threat != CLEAN for threat in table.threats):
        protocol = f" --protocol {table.protocol}" if table.protocol else ""
        out += [(f"Ours: runs with --attack {table.attack}{protocol} at each eps (clean: every run of the encoder "
                 "and task)."), ""]
    else:
        out += ["Ours: the clean scores of every run of the encoder and task.", ""]
    for threat in table.threats:
        out += [f"### {threat_heading(threat)}", "", _grid(result, threat), ""]
    zoo_notes = list(dict.fromkeys(f"{line.label}: {line.note}" for line in result.lines if line.note))
    for note in [*result.notes, *zoo_notes]:
        out.append(f"* {note}")
    if result.notes or zoo_notes:
        out.append("")
    missing = sum(1 for c in result.cells if c.fill is not None)
    if missing:
        out += [f"Not run yet: {missing} of {len(result.cells)} cells. These commands fill them:", "", "```bash",
                *result.fills, "```", ""]
    else:
        out += [f"Every cell of ours is there ({len(result.cells)} cells).", ""]
    return out


def markdown(results: list[TableResult], folders: list[Path], any_runs: bool) -> str:
    first = results[0]
    paper, suite = first.paper, first.suite
    where = " ".join(str(f) for f in folders) + ("" if any_runs else " (none yet)")
    out = [f"# {paper.title}", "",
           (f"{paper.authors}, {paper.where}. Published numbers as github.com/{paper.repository} prints them "
            f"(commit {paper.commit[:7]}); every source is in bench/report/published/{paper.name}.toml."), ""]
    if suite == "paper":
        out += [(f"Ours: bench leaderboard's cells of the runs under {where}. Each cell: published · ours [our 95% "
                 "interval] · ours - published · in / OUT (the published value inside / outside our interval). "
                 "n/t: in the paper only, not transcribed here. n=K: ours has K samples where the paper had more "
                 "or fewer. (protocol): ours ran another protocol, not compared."), ""]
    else:
        out += [(f"The tiny replica (tiny zoo, tiny-llava, tiny tasks) from the runs under {where}: ours [95% "
                 "interval]; the paper published nothing for the tiny suite."), ""]
    for result in results:
        out += _table_markdown(result)
    return "\n".join(out).rstrip() + "\n"


FIELDS = ("table", "threat", "vlm_group", "vlm", "row", "encoder", "column", "task", "metric", "published", "source",
          "setting", "samples", "ours", "lo", "hi", "n", "difference", "verdict", "our_task", "our_threat", "fill")


def cell_row(cell: PaperCell) -> dict[str, Any]:
    task = cell.task if cell.task else "avg(" + ",".join(cell.members) + ")"
    return {"table": cell.table, "threat": cell.threat, "vlm_group": cell.group, "vlm": cell.vlm, "row": cell.row,
            "encoder": cell.encoder, "column": cell.column, "task": task, "metric": cell.metric,
            "published": cell.published, "source": cell.source, "setting": cell.setting, "samples": cell.samples,
            "ours": cell.ours, "lo": cell.lo, "hi": cell.hi, "n": cell.n, "difference": cell.difference,
            "verdict": cell.verdict, "our_task": cell.our_task, "our_threat": cell.our_threat, "fill": cell.fill}


def csv_text(results: list[TableResult]) -> str:
    rows = pd.DataFrame([cell_row(c) for r in results for c in r.cells], columns=list(FIELDS))
    rows = rows.astype({"samples": "Int64", "n": "Int64"})  # counts stay integers beside missing ones
    return rows.to_csv(index=False, float_format="%.1f").rstrip("\n")


def json_text(results: list[TableResult], folders: list[Path]) -> str:
    paper = results[0].paper
    return json.dumps({
        "format": OUTPUT_FORMAT,
        "paper": {"name": paper.name, "title": paper.title, "authors": paper.authors, "where": paper.where,
                  "repository": paper.repository, "commit": paper.commit},
        "suite": results[0].suite, "results": [str(f) for f in folders],
        "tables": [{"id": r.table.id, "title": r.table.title, "file": r.table.file, "layout": r.table.layout,
                    "sections": r.table.sections, "evaluation": r.table.evaluation, "attack": r.table.attack,
                    "protocol": r.table.protocol, "threats": list(r.table.threats),
                    "columns": [s.label for s in r.slots], "notes": r.notes, "fill_commands": r.fills,
                    "cells": [cell_row(c) for c in r.cells]} for r in results]}, indent=1)


def suite_file_text(results: list[TableResult]) -> str:
    """The runs that fill every missing cell, as a suite file for `bench run --config`."""
    paper = results[0].paper
    runs = [run for r in results for run in r.fill_runs]
    comment = (f"The runs that fill {paper.name}'s tables ({', '.join(r.table.id for r in results)}) on the "
               f"{results[0].suite} suite\nwith the paper's settings, written by `bench paper {paper.name} "
               "--format toml`.\nRun them with `bench run --config THIS_FILE` (add --device cuda or any other "
               "flag:\nit applies to every run). Cells already run are left out.")
    return suite_toml(comment, {"about": f"{paper.title} ({paper.authors}, {paper.where})"}, runs)


def render(results: list[TableResult], fmt: str, folders: list[Path], any_runs: bool = True) -> str:
    if fmt == "toml":
        return suite_file_text(results)
    if fmt == "csv":
        return csv_text(results)
    if fmt == "json":
        return json_text(results, folders)
    return markdown(results, folders, any_runs)
