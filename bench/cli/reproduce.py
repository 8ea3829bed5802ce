"""`bench reproduce RESULTS`: re-run a committed leaderboard's suite file and diff the cells.

RESULTS/suite.toml is the suite file (`bench run --config`) whose runs made RESULTS/runs: the
classification and the VLM runs, one [[run]] each. A subset (--encoders, --tasks, --n-samples)
re-runs only that part; the committed side of each cell is then recomputed from the committed
per-sample records of exactly the samples re-run, so a 10-sample check compares like with like.
Exit 1 with the differing cells listed.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from bench.api.run_settings import parse_settings, settings_argv
from bench.api.suite_file import read_suite_file
from bench.report.leaderboard import accuracy_table, base_task, load_samples
from benchutil.arguments import non_negative_float, positive_int
from benchutil.errors import BenchError, unknown

SUITE_FILE = "suite.toml"
RUNS = "runs"  # the committed run folders, beside the suite file
KEY = ["encoder", "task", "id"]


def read_manifest(results: Path) -> list[dict[str, Any]]:
    """The settings of each committed run, with encoder and task lists as comma lists."""
    path = results / SUITE_FILE
    if not path.is_file():
        raise BenchError(f"{path} does not exist: bench reproduce needs a results folder with {SUITE_FILE} "
                         f"and {RUNS}/ (e.g. results/tiny)")
    settings = read_suite_file(path)
    for number, run in enumerate(settings, 1):
        for key in ("encoder", "task"):
            if key not in run:
                raise BenchError(f"{path} [[run]] {number} names no {key}; bench reproduce re-runs named "
                                 f"{key}s only (add {key} = [...])")
            names = run[key] if isinstance(run[key], list) else [run[key]]
            if not all(isinstance(name, str) for name in names):
                raise BenchError(f"{path} [[run]] {number}: {key} = {run[key]!r}; give a name or a list of names")
            run[key] = ",".join(names)
        where = f"{path} [[run]] {number}"
        parse_settings(settings_argv(run, where), where)  # a bad value is named before any work
    return settings


def _subset(requested: str | None, committed: list[str], what: str) -> list[str]:
    """The requested names (all committed ones when none); an unknown name is an error."""
    if requested is None:
        return committed
    bad = [name for name in requested.split(",") if name not in committed]
    if bad:
        raise unknown(what, bad[0], committed, " (the committed leaderboard has only these)")
    return requested.split(",")


def _names(settings: list[dict[str, Any]], key: str) -> list[str]:
    return list(dict.fromkeys(n for s in settings for n in s[key].split(",")))


def select(settings: list[dict[str, Any]], encoders: str | None, tasks: str | None, n_samples: int | None,
           whole_set: set[str] = frozenset()) -> list[dict[str, Any]]:
    """The committed settings narrowed to the requested encoders, tasks and sample count.

    Tasks in `whole_set` (CIDEr: its idf comes from the evaluated references) keep the
    committed sample count, since their scores change with the sample set."""
    wanted_encoders = _subset(encoders, _names(settings, "encoder"), "encoder")
    wanted_tasks = _subset(tasks, _names(settings, "task"), "task")
    out = []
    for original in settings:
        encoders_here = [e for e in original["encoder"].split(",") if e in wanted_encoders]
        tasks_here = [t for t in original["task"].split(",") if t in wanted_tasks]
        groups = [[t for t in tasks_here if t not in whole_set], [t for t in tasks_here if t in whole_set]]
        for k, group in enumerate(groups):
            if not encoders_here or not group:
                continue
            chosen = {**original, "encoder": ",".join(encoders_here), "task": ",".join(group)}
            if n_samples is not None and k == 0:
                chosen["n_samples"] = n_samples
            out.append(chosen)
    return out


def run_settings(settings: dict[str, Any], out: Path, command_line: list[str]) -> argparse.Namespace:
    """The parsed `bench run` settings of one committed run, writing into `out`."""
    argv = settings_argv({**settings, "out": out}, "the suite file")
    args = parse_settings(argv, "the suite file")
    args.command_line = command_line
    return args


LEGACY = "legacy-protocol"  # bench.report.leaderboard.threat_label's mark of runs older than protocol names


def matched_to_fresh(committed: pd.DataFrame, fresh: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The committed samples with legacy keys renamed to the fresh runs' keys.

    Runs made before runs recorded their protocol by name and their VQA evaluator carry legacy keys
    ('tiny-llava:tiny-vqa' without its evaluator, 'Linf 4/255 legacy-protocol'); the leaderboard keeps
    them apart from today's runs. Reproducing them is exactly the question whether today's default
    protocol and evaluator give their numbers, so here a legacy key is matched to the fresh key of
    the same task and eps (each renaming is reported)."""
    def base_threat(threat: str) -> str:
        return threat.replace(f" {LEGACY}", "")

    fresh_task = {base_task(t): t for t in fresh["task"].unique()}
    fresh_threat = {base_threat(t): t for t in fresh["threat"].unique()}
    renamed = committed.assign(task=committed["task"].map(lambda t: fresh_task.get(base_task(t), t)),
                               threat=committed["threat"].map(lambda t: fresh_threat.get(base_threat(t), t)))
    notes = sorted({f"committed {a!r} compared as {b!r}" for column in ("task", "threat")
                    for a, b in zip(committed[column], renamed[column]) if a != b})
    return renamed, notes


def compare(committed: pd.DataFrame, fresh: pd.DataFrame, tolerance: float) -> list[str]:
    """Lines 'encoder | column: committed X, now Y' for every cell that moved more than tolerance."""
    shared = committed.merge(fresh[KEY].drop_duplicates(), on=KEY)
    if shared.empty:
        return ["no committed records for the samples re-run: the committed runs use other sample ids"]
    before, after = accuracy_table(shared), accuracy_table(fresh)
    lines = []
    for encoder in after.index:
        for column in after.columns:
            old = before.at[encoder, column] if encoder in before.index and column in before.columns else float("nan")
            new = after.at[encoder, column]
            same = (pd.isna(old) and pd.isna(new)) or (not pd.isna(old) and abs(old - new) <= tolerance + 1e-9)
            if not same:
                lines.append(f"{encoder} | {column}: committed {old:.1f}, now {new:.1f}")
    return lines


def reproduce_command(args: argparse.Namespace, home: Path) -> int:
    from bench.api.evaluate import (  # torch and the models: only when reproducing
        prepare,
        summary_table,
    )

    manifest = read_manifest(args.results)
    committed = load_samples(args.results / RUNS)
    cider_tasks = {t.split(":", 1)[-1] for t in committed.loc[committed["metric"] == "CIDEr", "task"].unique()}
    chosen = select(manifest, args.encoders, args.tasks, args.n_samples, cider_tasks)
    with tempfile.TemporaryDirectory(prefix="bench-reproduce-") as tmp:
        ready = [prepare(run_settings(settings, Path(tmp), args.command_line), home) for settings in chosen]
        results = [result for evaluation in ready for result in evaluation.run()]
        print(summary_table(results).to_string(index=False))
        fresh = load_samples(Path(tmp))
    committed, notes = matched_to_fresh(committed, fresh)
    for note in notes:
        print(f"note: {note} (the committed runs predate named protocols / recorded VQA evaluators)")
    moved = compare(committed, fresh, args.tolerance)
    cells = accuracy_table(fresh).size
    if moved:
        print(f"MISMATCH: {len(moved)} of {cells} cells differ from {args.results} (tolerance {args.tolerance}):")
        print("\n".join(f"  {line}" for line in moved))
        return 1
    print(f"reproduced: all {cells} cells match {args.results} (tolerance {args.tolerance} points)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="re-run a committed leaderboard (or part of it) and diff the cells",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", type=Path, help="a committed results folder with suite.toml and runs/, e.g. results/tiny")
    p.add_argument("--encoders", default=None, help="comma list: re-run only these encoders")
    p.add_argument("--tasks", default=None, help="comma list: re-run only these tasks")
    p.add_argument("--n-samples", type=positive_int, default=None, help="re-run only the first N samples per task")
    p.add_argument("--tolerance", type=non_negative_float, default=0.0,
                   help="allowed difference in accuracy points (default 0)")
