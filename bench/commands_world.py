"""`bench data` and `bench train`: make the tiny world and the models the suite ranks."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.errors import BenchError


def data_command(args: argparse.Namespace) -> None:
    from bench.tiny import world
    from bench.tiny.preview import preview
    from bench.tiny.suite import world_root

    if args.preview:
        root = world_root(None, args.seed)
        print(f"wrote {preview(root, args.out or Path('tiny_preview.png'))}")
        return
    if args.out is None:
        raise BenchError("bench data tiny needs --out DIR (or --preview for a picture of the world)")
    manifest = world.write_world(args.out, seed=args.seed)
    print(f"wrote {len(manifest['files'])} files to {args.out} (manifest {world.manifest_digest(manifest)[:12]})")


def train_command(args: argparse.Namespace) -> None:
    if args.suite != "tiny" or args.method != "clip":
        raise BenchError(f"bench train --method {args.method} --suite {args.suite} is not available yet; "
                         "this version trains --suite tiny --method clip")
    from bench import load_encoder
    from bench.evaluate import clean_accuracy
    from bench.suites import get_suite, load_task
    from bench.tiny import world
    from bench.tiny.suite import CLASSIFICATION_TASKS, world_root
    from bench.train.checkpoint import write_card
    from bench.train.clip import ClipRecipe, train_clip

    root = world_root(None, 0)
    recipe = ClipRecipe(steps=args.steps, batch_size=args.batch_size, lr=args.lr, wd=args.wd,
                        warmup=args.warmup, seed=args.seed, checkpoint_every=args.checkpoint_every)
    card = train_clip(root, args.out, recipe, args.resume, ["bench", *sys.argv[1:]])
    # The card's accuracies are those of the shipped (fp16) weights, measured as `bench run` would.
    encoder = load_encoder(str(args.out / "clip.safetensors"))
    suite = get_suite("tiny")
    card["clean_zero_shot_accuracy"] = {t: round(clean_accuracy(encoder, load_task(suite, t, None)), 4)
                                        for t in CLASSIFICATION_TASKS}
    card["data_manifest_sha256"] = world.manifest_digest(json.loads((root / "manifest.json").read_text()))
    card["weights_sha256"] = encoder.provenance.sha256
    write_card(args.out / "clip.json", card)
    print(json.dumps(card["clean_zero_shot_accuracy"], indent=1))


def add_parsers(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="write a suite's generated data (the tiny world)")
    data.add_argument("suite", choices=["tiny"])
    data.add_argument("--out", type=Path, default=None, help="folder for the world, or PNG path with --preview")
    data.add_argument("--preview", action="store_true", help="write a PNG grid of scenes with captions/questions")
    data.add_argument("--seed", type=int, default=0)

    train = sub.add_parser("train", help="train an encoder of a suite's zoo (tiny CLIP today)")
    train.add_argument("--suite", default="tiny")
    train.add_argument("--method", default="clip", help="clip (contrastive pre-training of the tiny CLIP)")
    train.add_argument("--steps", type=int, default=1500)
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--lr", type=float, default=2e-3)
    train.add_argument("--wd", type=float, default=0.1)
    train.add_argument("--warmup", type=int, default=100)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=Path("runs/train/tiny-clip"))
    train.add_argument("--checkpoint-every", type=int, default=250, help="steps between resumable checkpoints")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
