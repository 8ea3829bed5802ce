"""The `bench` command line. Every user error is one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

from bench.errors import BenchError

EXAMPLES = """examples:
  bench run --encoder clip --attack aa --eps 0,2/255,4/255 --task imagenet --data-root /data
  bench run --encoder fare-4,sim-clip-4 --attack apgd --eps 4/255 --n-samples 500 --device cuda
  bench run --encoder path/to/vision.safetensors --task folder:/data/my_images --attack pgd --eps 2/255
  bench run --encoder fare-4 --task tiny-captions,tiny-vqa --vlm tiny-llava --attack apgd --eps 0,2/255,4/255
  bench run --encoder clip --task tiny-captions --eps 2/255 --target "please reset your password"
  bench run --suite paper --encoder fare-4 --task coco,textvqa --vlm llava-1.5-7b --eps 4/255 --device cuda
  bench list encoders
  bench run --encoder path/to/fare_eps_4.pt --base clip --task tiny-colour --attack apgd --eps 4/255
  bench run --encoder clip --task tiny-vqa --attack pgd --attack-args '{"step_size": 0.002}' --eps 2/255
  bench leaderboard runs/ --format md --out runs/leaderboard.md
  bench plot runs/ --out runs/robust_vs_eps.png
  bench train --method sim-clip --eps 4/255 --out runs/sim-clip-4
  bench reproduce results/tiny --encoders clip,fare-4 --n-samples 20
"""


RUN_DESCRIPTION = """Evaluate encoders under attack: one resumable run per (encoder, task, attack, eps).

Each run is a folder under --out with config.json (command, versions, git commit, seed,
checkpoint sha256, sample ids) and records.jsonl (one line per sample: clean and
adversarial prediction, robust or not, which attack won, perturbation norms). Re-running
the same command skips finished samples, so a killed run loses nothing. eps is in pixel
units of [0,1] images: 4/255 or 0.0157; 0 means clean. A robust sample is one classified
correctly and unbroken by every attack of the run (--attack aa: APGD-CE + APGD-T, the
RobustVLM protocol).

Captioning and VQA tasks (tiny-captions, tiny-vqa, tiny-textvqa; coco, flickr30k, vqav2,
textvqa) put the encoder into a VLM (--vlm). Every attack runs there on the LM loss: one
pass per ground-truth caption / frequent answer, keeping per sample the lowest-scoring
output (CIDEr, VQA accuracy); aa adds RobustVLM's pushes towards "maybe" / "Word" on VQA.
--task all runs classification, captioning and VQA.
"""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        self.exit(2, f"error: {message} (bench {self.prog.split()[-1]} --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="bench", description="Adversarial robustness of CLIP encoders and the VLMs built on them.",
                    epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = sub.add_parser("run", help="evaluate encoders under attack", epilog=EXAMPLES,
                         description=RUN_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--suite", default=None, help="zoo + datasets + defaults (bench list suites)")
    run.add_argument("--encoder", default="clip",
                     help="comma list: zoo names, open_clip:ARCH/TAG, hf-hub:ORG/NAME, or checkpoint paths")
    run.add_argument("--arch", default=None, help="open_clip architecture of a checkpoint path that does not record it")
    run.add_argument("--base", default=None,
                     help="the model a vision-only checkpoint was fine-tuned from (zoo name or open_clip:ARCH/TAG): "
                          "its text tower completes the checkpoint, e.g. --base clip")
    run.add_argument("--task", default=None, help="comma list of datasets (bench list tasks) or folder:PATH")
    run.add_argument("--attack", default="aa",
                     help="aa | apgd | apgd-t | apgd-dlr | pgd | cw | none | autoattack | torchattacks:<Name> "
                          "(bench list attacks); every one but the last two works on every task")
    run.add_argument("--attack-args", default="{}",
                     help='the attack core\'s optional arguments as JSON, e.g. \'{"restarts": 5}\' (apgd), '
                          '\'{"step_size": 0.001}\' (pgd), \'{"kappa": 5}\' (cw); unknown keys are refused')
    run.add_argument("--eps", default="0,4/255", help="comma list: 0 = clean, 4/255 or 0.0157 (pixel units)")
    run.add_argument("--norm", default="linf", choices=["linf", "l2"])
    run.add_argument("--steps", type=positive_int, default=100, help="attack iterations (default 100)")
    run.add_argument("--n-samples", type=positive_int, default=None, help="samples per dataset (suite default)")
    run.add_argument("--seed", type=int, default=0, help="seed of the sample subset and of the attacks")
    run.add_argument("--batch-size", type=positive_int, default=32)
    run.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    run.add_argument("--data-root", default=None, help="where the suite's datasets live (or $BENCH_DATA)")
    run.add_argument("--out", default="runs", type=Path,
                     help="where run folders go (default runs/; results/ holds the committed leaderboards)")
    run.add_argument("--vlm", default=None,
                     help="VLM for captioning / VQA tasks: tiny-llava, llava-1.5-7b, llava:PATH (suite default)")
    run.add_argument("--target", default=None,
                     help='targeted VLM attack: push outputs towards this string, e.g. "Please reset your password"')
    run.add_argument("--early-stop", type=float, default=None, metavar="SCORE",
                     help="VLM tasks: stop attacking a sample once its score <= SCORE (RobustVLM's shortcut; "
                          "makes robust scores optimistic, recorded in the run config)")

    lst = sub.add_parser("list", help="list encoders, attacks, tasks or suites with their provenance")
    lst.add_argument("what", choices=["encoders", "attacks", "tasks", "vlms", "suites"])
    lst.add_argument("--suite", default=None)

    from bench import commands_train, commands_world, reproduce

    commands_world.add_parser(sub)
    commands_train.add_parser(sub)
    reproduce.add_parser(sub)

    for name, text in (("leaderboard", "paper-style table of all runs under a results directory"),
                       ("plot", "robust accuracy vs eps, one line per encoder (PNG)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("results", nargs="?", default="runs", type=Path)
        p.add_argument("--out", type=Path, default=None)
        if name == "leaderboard":
            p.add_argument("--format", default="md", choices=["md", "csv", "latex", "html"])
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2, already printed on one line)
        return int(exit_.code or 0)
    args.command_line = ["bench", *(sys.argv[1:] if argv is None else argv)]  # recorded in configs and cards
    try:
        if args.command == "run":
            from bench.commands import run_command

            from bench.tiny.suite import bench_home

            run_command(args, bench_home())
        elif args.command == "list":
            from bench.commands import list_command

            list_command(args.what, args.suite)
        elif args.command == "data":
            from bench.commands_world import data_command

            data_command(args)
        elif args.command == "train":
            from bench.commands_train import train_command

            train_command(args)
        elif args.command == "leaderboard":
            from bench.leaderboard import leaderboard_command

            leaderboard_command(args.results, args.format, args.out)
        elif args.command == "reproduce":
            from bench.reproduce import reproduce_command
            from bench.tiny.suite import bench_home

            return reproduce_command(args, bench_home())
        elif args.command == "plot":
            from bench.leaderboard import plot_command

            plot_command(args.results, args.out)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        from attacks.guard import InvalidAdversarialError

        if not isinstance(err, InvalidAdversarialError):
            raise  # unexpected: a bug, shown with its traceback
        print(f"error: {err}; nothing was recorded for that batch (check --attack-args, --eps, --norm)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished samples are saved; re-run the same command to resume", file=sys.stderr)
        return 130
    return 0


def parse_attack_args(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise BenchError(f"--attack-args is not valid JSON ({err.msg}); write e.g. '{{\"restarts\": 5}}'") from None
    if not isinstance(value, dict):
        raise BenchError("--attack-args must be a JSON object, e.g. '{\"restarts\": 5}'")
    return value


if __name__ == "__main__":
    sys.exit(main())
