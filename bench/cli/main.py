"""The `bench` command line. Every user error is one line on stderr and exit code 2.

A subcommand's body is imported only when it runs, so `bench --help` answers without
loading torch.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench import __version__
from bench.api import run_arguments
from bench.api.run_arguments import EXAMPLES
from bench.cli import paper as commands_paper
from bench.cli import reproduce
from bench.cli import train as commands_train
from bench.cli import world as commands_world
from bench.report import leaderboard
from benchutil.arguments import Parser, positive_int
from benchutil.errors import BenchError
from benchutil.fileio import is_disk_full


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="bench", description="Adversarial robustness of CLIP encoders and the VLMs built on them.",
                    epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"robust-vlm-bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run_arguments.add_parser(sub)

    lst = sub.add_parser("list", help="list encoders, attacks, tasks or suites with their provenance")
    lst.add_argument("what", choices=["encoders", "attacks", "tasks", "vlms", "suites"])
    lst.add_argument("--suite", default=None)

    commands_world.add_parser(sub)
    commands_train.add_parser(sub)
    reproduce.add_parser(sub)
    commands_paper.add_parser(sub)

    for name, text in (("leaderboard", "paper-style table of all runs under a results directory"),
                       ("plot", "robust accuracy vs eps, one line per encoder (PNG)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("results", nargs="*", default=[Path("runs")], type=Path,
                       help="results folders (default runs/); several are read as one, e.g. a zoo's and an ablation's")
        p.add_argument("--out", type=Path, default=None)
        if name == "leaderboard":
            p.add_argument("--format", default="md", choices=["md", "csv", "latex", "html", "json"],
                           help="json: one aggregate (config + every cell) that bench leaderboard reads back")
            p.add_argument("--cards", type=Path, default=None,
                           help="also write a RobustBench-style card per encoder into this folder")
            p.add_argument("--ci", action="store_true",
                           help="follow each cell and average with its 95%% interval (columns 'lo', 'hi'): "
                                "Wilson for accuracies, bootstraps for CIDEr (idf re-computed per resample), "
                                "VQA accuracy and averages")
            p.add_argument("--data-root", default=None,
                           help="with --ci: the paper suite's data (CIDEr intervals re-score the references)")
            p.add_argument("--encoders", default=None, help="only these encoders (comma-separated)")
            p.add_argument("--tasks", default=None,
                           help="only these task columns (comma-separated, e.g. tiny-shape,tiny-llava:tiny-vqa)")
    site = sub.add_parser("site", help="a static leaderboard website (opens from file://, no server): a ranked, "
                                       "searchable table per threat, a page per encoder and per run")
    site.add_argument("results", nargs="+", type=Path, help="results folders, e.g. results/tiny/runs")
    site.add_argument("--out", type=Path, required=True, help="folder for index.html, encoders/, runs/")
    site.add_argument("--data-root", default=None, help="the paper suite's data (CIDEr intervals re-score references)")
    site.add_argument("--audit", type=Path, action="append", default=None, metavar="REPORT",
                      help="a `bench audit --out` report (.md or its .json); flags the encoders it warned about "
                           "(repeatable)")
    aud = sub.add_parser("audit", help="gradient-masking checks per encoder and zero-shot task: eps, more "
                                      "iterations, black-box Square, transfer from clip, input gradients")
    aud.add_argument("results", type=Path, help="a results folder, e.g. results/tiny/runs")
    aud.add_argument("--suite", default=None, help="the suite the encoders and tasks come from (default tiny)")
    aud.add_argument("--n-samples", type=positive_int, default=100, help="first N samples of each run (default 100)")
    aud.add_argument("--out", type=Path, default=None, help="write the report here (markdown; .json beside it)")
    aud.add_argument("--queries", type=positive_int, default=1000, help="Square's query budget (default 1000)")
    aud.add_argument("--encoders", default=None, help="only these encoders (comma-separated; default every one)")
    aud.add_argument("--device", default="auto")
    aud.add_argument("--data-root", default=None)
    cmp = sub.add_parser("compare", help="two encoders on the same samples: difference, 95%% interval, paired test "
                                          "(McNemar for accuracies, sign-flip for CIDEr / VQA)")
    cmp.add_argument("results", nargs="+", type=Path, help="results folders, e.g. results/tiny/runs")
    cmp.add_argument("--encoders", required=True, help="two encoder names, e.g. fare-4,sim-clip-4")
    cmp.add_argument("--task", default=None, help="only this task")
    cmp.add_argument("--eps", default=None, help="only this eps label, e.g. 4/255 or clean")
    cmp.add_argument("--data-root", default=None, help="the paper suite's data (CIDEr re-scores its references)")
    return parser


def names(flag: str | None) -> list[str] | None:
    """A comma-separated list flag ("a,b"), or None when not given."""
    return [n.strip() for n in flag.split(",") if n.strip()] if flag else None


def expected_error(err: Exception) -> str | None:
    """The one line for an error a user can fix; None for a bug (its traceback is shown)."""
    if isinstance(err, BenchError):
        return str(err)
    if is_disk_full(err):  # a write outside benchutil.fileio's helpers: no folder to name, still one line
        return f"{err.strerror or err}; free space or choose another --out"
    if isinstance(err, OSError) and err.filename is not None:  # an unwritable --out, a full disk, ...
        return f"cannot use {err.filename}: {err.strerror or err}; check the path and its permissions"
    attacks = sys.modules.get("attacks")  # loaded when an attack ran
    if attacks is not None and isinstance(err, attacks.InvalidAdversarialError):
        return f"{err}; nothing was recorded for that batch (check --attack-args, --eps, --norm)"
    if attacks is not None and isinstance(err, attacks.NonFiniteLossError):
        return f"{err}; nothing was recorded for that batch"
    return None


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2, already printed on one line)
        return int(exit_.code or 0)
    args.command_line = ["bench", *(sys.argv[1:] if argv is None else argv)]  # recorded in configs and cards
    try:
        if args.command in ("run", "list"):
            from bench.cli import (
                commands,  # torch and the models: only when a command needs them
            )
            from bench.tiny.suite import bench_home

            if args.command == "run":
                commands.run_command(args, bench_home())
            else:
                from bench.cli.listing import list_command

                list_command(args.what, args.suite)
        elif args.command == "data":
            commands_world.data_command(args)
        elif args.command == "train":
            commands_train.train_command(args)
        elif args.command == "leaderboard":
            leaderboard.leaderboard_command(args.results, args.format, args.out, args.cards, args.ci,
                                            args.data_root, names(args.encoders), names(args.tasks))
        elif args.command == "reproduce":
            from bench.tiny.suite import bench_home

            return reproduce.reproduce_command(args, bench_home())
        elif args.command == "compare":
            from bench.report.compare import compare_command

            compare_command(args.results, args.encoders, args.task, args.eps, args.data_root)
        elif args.command == "plot":
            leaderboard.plot_command(args.results, args.out)
        elif args.command == "audit":
            from bench.report.audit import audit_command

            audit_command(args.results, args.suite or "tiny", args.n_samples, args.out, args.device, args.data_root,
                          args.queries, names(args.encoders))
        elif args.command == "paper":
            commands_paper.paper_command(args)
        elif args.command == "site":
            from bench.report.site import site_command

            site_command(args.results, args.out, args.data_root, args.audit)
    except BrokenPipeError:  # `bench leaderboard ... | head`: the reader has what it wanted (before
        # `except Exception`, which would otherwise catch it: BrokenPipeError is an OSError)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 0
    except Exception as err:
        line = expected_error(err)
        if line is None:
            raise  # unexpected: a bug, shown with its traceback (please report it)
        print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished samples are saved; re-run the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
