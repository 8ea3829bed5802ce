"""The `bench run` commands (and suite-file runs) that fill the cells of a paper's table we have
not run yet.

Each command carries the paper's settings for its cells (bench.report.published): the encoder,
--task, --vlm, --attack, --eps, --protocol (simclip for Sim-CLIP's table, robustvlm for FARE's)
and, on the paper suite, --n-samples as the paper's code evaluated. A clean cell is filled by
any run of its encoder and task, so `--eps 0` joins the attacked radii. Cells that share
settings are merged into one command: bench run evaluates every (encoder, task, eps) of its
comma lists.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report.paper_tables import CLEAN, PaperCell, TableResult, eps_value


@dataclass(frozen=True)
class Need:
    """One (VLM, task, encoder, eps) run a cell still needs."""
    vlm: str | None
    task: str
    encoder: str
    eps: str  # "0" (clean) or "4/255"
    samples: int | None


def needs(cell: PaperCell) -> list[Need]:
    if cell.encoder is None:
        return []
    eps = "0" if cell.threat == CLEAN else cell.threat
    return [Need(cell.vlm, task, cell.encoder, eps, cell.samples) for task in cell.missing]


def _eps_order(eps: str) -> float:
    return 0.0 if eps == "0" else eps_value(eps)


def run_settings(result: TableResult, vlm: str | None, tasks: list[str], encoders: list[str], eps: list[str],
                 samples: int | None, out: Path) -> dict[str, Any]:
    """One `bench run`'s settings, keyed as in a suite file (bench run --config)."""
    table = result.table
    attacked = any(e != "0" for e in eps)
    settings: dict[str, Any] = {"suite": result.suite, "encoder": encoders, "task": tasks}
    if vlm:
        settings["vlm"] = vlm
    if attacked:
        settings["attack"] = table.attack
    settings["eps"] = sorted(eps, key=_eps_order)
    if attacked and table.protocol is not None and vlm:
        settings["protocol"] = table.protocol
    if samples:
        settings["n_samples"] = samples
    settings.update(table.run)  # the paper's further settings (ΔCLIP's sample order)
    settings["out"] = str(out)
    return settings


def command(settings: dict[str, Any]) -> str:
    """The command line of a run's settings."""
    words = ["bench", "run"]
    for key, value in settings.items():
        words += [f"--{key.replace('_', '-')}", ",".join(value) if isinstance(value, list) else str(value)]
    return " ".join(shlex.quote(w) for w in words)


def fill_runs(result: TableResult, out: Path) -> list[dict[str, Any]]:
    """Each cell's own command (cell.fill), and the settings of the fewest runs that fill every
    missing cell of the table: first the radii of a (VLM, task, encoder) are joined, then the
    encoders that need the same radii of a task, then the tasks that need the same encoders and radii."""
    for cell in result.cells:
        own = needs(cell)
        if own:
            cell.fill = command(run_settings(result, cell.vlm, [n.task for n in own], [cell.encoder], [own[0].eps],
                                             cell.samples, out))
    radii: dict[tuple, list[str]] = {}
    for cell in result.cells:
        for need in needs(cell):
            key = (need.vlm, need.samples, need.task, need.encoder)
            radii.setdefault(key, [])
            if need.eps not in radii[key]:
                radii[key].append(need.eps)
    encoders: dict[tuple, list[str]] = {}
    for (vlm, samples, task, encoder), eps in radii.items():
        encoders.setdefault((vlm, samples, task, tuple(sorted(eps, key=_eps_order))), []).append(encoder)
    tasks: dict[tuple, list[str]] = {}
    for (vlm, samples, task, eps), names in encoders.items():
        tasks.setdefault((vlm, samples, eps, tuple(names)), []).append(task)
    return [run_settings(result, vlm, names_of_tasks, list(names), list(eps), samples, out)
            for (vlm, samples, eps, names), names_of_tasks in tasks.items()]
