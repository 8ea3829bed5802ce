"""`bench paper PAPER [RESULTS...]`: a paper's published tables beside our runs."""
from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_RESULTS = Path("runs")

DESCRIPTION = """Set a paper's published tables beside our runs, cell by cell.

PAPER is sim-clip (Hossain & Imteaj 2024: speedlab-git/SimCLIP's README 'Results': COCO,
Flickr30k, VizWiz, OK-VQA with OpenFlamingo-9B and LLaVA-1.5, clean and 4/255), fare
(Schlarmann et al., ICML 2024: chs20/RobustVLM's README: the VLM table, the zero-shot
average, the base-size models; POPE / ScienceQA laid out, their numbers being in the paper
only) or delta-clip (Wang et al. 2025: the ImageNet, ObjectNet and CIFAR100 values of
ΔCLIP that zw615/Double_Visual_Defense's README figure writes, under ΔCLIP's own sample
order: --sample-order dvd). Each cell prints

  published · ours [our 95% interval] · ours - published · in / OUT

ours being bench leaderboard's cell of the runs under RESULTS that match the paper's
settings (encoder, VLM, task, Linf eps, and --protocol simclip for Sim-CLIP's table,
robustvlm for FARE's). 'in': the published value lies inside our 95% interval, the gap is
within what our samples explain; 'OUT': it does not. 'n/t': the number is in the paper's PDF
only, not transcribed. A cell we have not run says 'not run', and each table ends with the
`bench run` commands that fill its missing cells with the paper's settings.

Runs of the tiny suite give the tiny replica of each table (tiny zoo, tiny-llava, tiny tasks;
our numbers only). The suite is read from the runs (tiny when every run is a tiny task);
--suite overrides it. Sources and how to read a verdict: docs/published.md.
"""

EXAMPLES = """examples:
  bench paper sim-clip                          # published table, 'not run' cells and how to fill them
  bench paper sim-clip results/tiny/runs        # the tiny replica from the committed tiny runs
  bench paper fare runs/ --data-root $BENCH_DATA --table vlm,zero-shot
  bench paper fare runs/ --format csv --out fare_vs_ours.csv
  bench paper fare --format toml --out fare.toml  # then: bench run --config fare.toml --device cuda
  bench paper delta-clip runs/                  # ΔCLIP's figure beside our ΔCLIP-H/14-336 runs
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("paper", help="a paper's published tables beside our runs: difference and 95%% interval "
                                     "verdict per cell, commands for the cells not run yet",
                       description=DESCRIPTION, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paper", help="sim-clip, fare or delta-clip")
    p.add_argument("results", nargs="*", type=Path, default=None,
                   help="results folders bench run wrote (default runs/; several are read as one)")
    p.add_argument("--suite", choices=["paper", "tiny"], default=None,
                   help="the names the tables are built with (default: tiny when every run is a tiny task)")
    p.add_argument("--table", default=None,
                   help="only these tables (comma-separated; sim-clip: vlm; fare: vlm, zero-shot, "
                        "pope-scienceqa, base-models; delta-clip: zero-shot)")
    p.add_argument("--format", default="md", choices=["md", "csv", "json", "toml"],
                   help="md: the paper's layout; csv / json: one row per cell with every field; toml: a suite "
                        "file of the runs that fill the missing cells (bench run --config FILE)")
    p.add_argument("--out", type=Path, default=None, help="write here instead of printing")
    p.add_argument("--data-root", default=None,
                   help="the paper suite's data: CIDEr intervals re-score the references (or $BENCH_DATA)")


def paper_command(args: argparse.Namespace) -> None:
    from bench.report.paper_render import render
    from bench.report.paper_tables import infer_suite, paper_tables, read_runs
    from bench.report.published import load_paper
    from benchutil.fileio import atomic_write_text, disk_errors

    paper = load_paper(args.paper)  # an unknown paper: one line with the closest name
    tables = [t.strip() for t in args.table.split(",") if t.strip()] if args.table else None
    for table in tables or []:
        paper.table(table)
    folders = args.results or [DEFAULT_RESULTS]
    samples = read_runs(folders, default=not args.results)
    suite = args.suite or infer_suite(samples)
    out_folder = folders[0] / "runs" if (folders[0] / "runs").is_dir() else folders[0]
    results = paper_tables(paper, suite, samples, tables, args.data_root, out_folder)
    text = render(results, args.format, folders, any_runs=samples is not None)
    if args.out is None:
        print(text)
        return
    with disk_errors(args.out.parent):
        args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, text + "\n")
    print(f"wrote {args.out}")
