"""The body of `bench run`: a thin caller of the one evaluation path (bench.api.evaluate), once per
run of a suite file when --config names one."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.api.evaluate import prepare, summary_table
from bench.api.run_settings import parse_settings, settings_argv
from bench.api.suite_file import read_suite_file
from bench.run.runner import RunResult


def _beside_config(command_line: list[str]) -> list[str]:
    """The flags given beside --config FILE: they override every run of the file."""
    argv = command_line[2:]  # after "bench run"
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--config":
            skip = True
        elif not arg.startswith("--config="):
            out.append(arg)
    return out


def run_groups(args: argparse.Namespace) -> list[argparse.Namespace]:
    """The parsed settings of each run: the command line's, or each [[run]] of its suite file."""
    if args.config is None:
        return [args]
    groups = []
    for number, settings in enumerate(read_suite_file(args.config), 1):
        where = f"{args.config} [[run]] {number}"
        group = parse_settings([*settings_argv(settings, where), *_beside_config(args.command_line)], where)
        group.command_line = args.command_line
        groups.append(group)
    return groups


def run_command(args: argparse.Namespace, home: Path) -> list[RunResult]:
    groups = run_groups(args)
    ready = [prepare(group, home) for group in groups]  # every run of a suite file checked before the first starts
    results = [result for evaluation in ready for result in evaluation.run()]
    print(summary_table(results).to_string(index=False))
    outs = list(dict.fromkeys(str(g.out) for g in groups))
    print(f"records: {', '.join(outs)}/<run>/records.jsonl; tables: bench leaderboard {' '.join(outs)}")
    return results

