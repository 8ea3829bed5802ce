"""The flags of `bench run` (also what `bench reproduce` parses its committed settings with)."""
from __future__ import annotations

import argparse
from pathlib import Path

from benchutil.arguments import (
    finite_float,
    non_negative_int,
    positive_int,
    worker_count,
)
from tasks.clip_benchmark_order import DEFAULT_SAMPLE_ORDER, SAMPLE_ORDERS
from tasks.protocols import VLM_PROTOCOLS
from tasks.text_threat import LEVENSHTEIN

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



def add_parser(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="evaluate encoders under attack", epilog=EXAMPLES,
                         description=RUN_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--config", type=Path, default=None, metavar="SUITE.toml",
                     help="a suite file: the runs to make, one [[run]] table each, keyed by these flags' names "
                          "(n_samples for --n-samples); flags given beside it override the file "
                          "(docs/commands.md#suite-files)")
    add_run_flags(run)


def settings_parser() -> argparse.ArgumentParser:
    """The run flags alone, raising instead of exiting: how suite files and bench.benchmark's keyword
    arguments are parsed, with the command line's own types and checks."""
    parser = argparse.ArgumentParser(prog="bench run", add_help=False, exit_on_error=False)
    add_run_flags(parser)
    return parser


def add_run_flags(run: argparse.ArgumentParser) -> None:
    """Every setting of a run; each flag's dest is also its key in a suite file and in bench.benchmark."""
    run.add_argument("--suite", default=None, help="zoo + datasets + defaults (bench list suites)")
    run.add_argument("--encoder", default="clip",
                     help="comma list: zoo names, open_clip:ARCH/TAG, hf-hub:ORG/NAME, or checkpoint paths")
    run.add_argument("--arch", default=None, help="open_clip architecture of a checkpoint path that does not record it")
    run.add_argument("--base", default=None,
                     help="the model a vision-only checkpoint was fine-tuned from (zoo name or open_clip:ARCH/TAG): "
                          "its text tower completes the checkpoint, e.g. --base clip")
    run.add_argument("--task", default=None, help="comma list of datasets (bench list tasks) or folder:PATH")
    run.add_argument("--attack", default="aa",
                     help="aa | aa-rand | apgd | apgd-t | apgd-dlr | pgd | cw | none | autoattack | "
                          "torchattacks:<Name> | charmer (bench list attacks, plugins included); the pixel attacks "
                          "but the last three work on every image task, charmer on text tasks")
    run.add_argument("--attack-args", default="{}",
                     help='the attack core\'s optional arguments as JSON, e.g. \'{"restarts": 5}\' (apgd), '
                          '\'{"step_size": 0.001}\' (pgd), \'{"kappa": 5}\' (cw); unknown keys are refused')
    run.add_argument("--eps", default="0,4/255", help="comma list: 0 = clean, 4/255 or 0.0157 (pixel units); "
                                                       "under --norm levenshtein k character edits, e.g. 0,1,2")
    run.add_argument("--norm", default="linf", choices=["linf", "l2", LEVENSHTEIN],
                     help="the threat model: linf / l2 balls on pixels, or levenshtein (at most k character edits "
                          "of a sentence: text tasks, --attack charmer)")
    run.add_argument("--steps", type=positive_int, default=None,
                     help="attack iterations (default 100; 10000 for --target under --protocol robustvlm)")
    run.add_argument("--n-samples", type=positive_int, default=None,
                     help="samples per dataset (suite default; the paper suite's --target runs: 25, as RobustVLM)")
    run.add_argument("--seed", type=int, default=0, help="seed of the sample subset and of the attacks")
    run.add_argument("--batch-size", type=positive_int, default=32)
    run.add_argument("--device", default="auto",
                     help="auto (CUDA when present) | cpu | cuda | cuda:N | mps; under torchrun cuda = cuda:LOCAL_RANK")
    run.add_argument("--data-root", default=None, help="where the suite's datasets live (or $BENCH_DATA)")
    run.add_argument("--sample-order", default=DEFAULT_SAMPLE_ORDER, choices=list(SAMPLE_ORDERS),
                     help="which samples of CLIP_benchmark's webdatasets, in which order (paper suite): robustvlm = "
                          "RobustVLM's read, in batches of 50 (the default); dvd = ΔCLIP's, in batches of 8, "
                          "ImageNet from wds_imagenet1k, 1000 samples per dataset, CIFAR / STL-10 attacked at the "
                          "encoder's resolution (docs/paper-suite.md#δclips-zero-shot-protocol)")
    run.add_argument("--out", default="runs", type=Path,
                     help="where run folders go (default runs/; results/ holds the committed leaderboards)")
    run.add_argument("--vlm", default=None,
                     help="VLM for captioning / VQA tasks: tiny-llava, llava-1.5-7b, llava:PATH (suite default)")
    run.add_argument("--target", default=None,
                     help='targeted VLM attack: push outputs towards this string, e.g. "Please reset your password"')
    run.add_argument("--early-stop", type=finite_float, default=None, metavar="SCORE",
                     help="VLM tasks: stop attacking a sample once its score <= SCORE (RobustVLM's shortcut; "
                          "makes robust scores optimistic, recorded in the run config)")
    run.add_argument("--shard", default=None, metavar="I/N",
                     help="evaluate batches k with k mod N == I of every run (default: torchrun's RANK/WORLD_SIZE "
                          "or a Slurm array's task; else everything); shards write their own records files")
    run.add_argument("--workers", type=worker_count, default=None,
                     help="processes decoding images ahead of the attack (default: half the CPUs - 1, at most 8)")
    run.add_argument("--save-examples", type=non_negative_int, default=0, metavar="K",
                     help="keep the first K samples of each run as pictures (clean, adversarial, perturbation "
                          "amplified) in its examples/ folder; bench site shows them")
    run.add_argument("--precision", default=None, choices=["fp32", "tf32", "bf16", "fp16"],
                     help="what attacks compute in (autocast for bf16 / fp16; TF32 matmuls on CUDA for tf32); "
                          "default fp32, and fp16 for captioning / VQA under --protocol robustvlm / simclip on "
                          "CUDA (as the references). bf16 / fp16 attacks end with a float32 stage (not under "
                          "simclip, whose single pass has none), and every recorded point is re-scored in fp32")
    run.add_argument("--protocol", default=None, choices=list(VLM_PROTOCOLS),
                     help="captioning / VQA attack protocol (suite default: paper robustvlm, tiny strict). "
                          "robustvlm = RobustVLM's: a last float32 APGD pass on every sample from its best "
                          "perturbation on the winning string (the first string where none won), its early stops "
                          "(COCO CIDEr < 10, Flickr30k < 2), 10000 steps for --target. "
                          "strict = no refinement, no early stop beyond score 0. "
                          "simclip = the Sim-CLIP paper's: one APGD pass on the first string (--attack apgd), "
                          "scoring the adversarial output as it is")
