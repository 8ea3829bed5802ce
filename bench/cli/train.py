"""`bench train`: the tiny CLIP (contrastive) and robust fine-tunes (Sim-CLIP, FARE, TeCoA).

The CLI imports this module to build its parser, so the training code (torch, open_clip)
is imported inside the command bodies.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from benchutil.arguments import (
    float_pair,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from benchutil.errors import BenchError, unknown

TRAIN_DESCRIPTION = """Train the encoders a suite ranks.

  --method clip       contrastive pre-training of the tiny CLIP on the tiny world's captions
  --method fare       ||f(x') - f0(x)||^2 to the frozen original embedding (Schlarmann et al.)
  --method tecoa      cross-entropy of the zero-shot head on x' (Mao et al.)
  --method sim-clip   negative cosine between clean and adversarial embeddings; --anchor
                      script (paper default: the public script's loss on the frozen original),
                      frozen (tiny default: the same value, twice the gradient) or shared (the
                      paper's siamese pass through the encoder being trained)
  --method vlm        tiny-llava (tiny suite): LLaVA's recipe on the tiny world's captions, VQA
                      and TextVQA; --base is the frozen vision tower, projector + LM learn

The inner attack (--inner-steps, --inner-step-size, random start) maximises the method's loss
(--inner-loss): --inner-attack robustvlm is RobustVLM's sign-momentum PGD (--inner-momentum;
paper default), pgd the project's PGD (tiny default). Training runs in fp32 unless --precision
bf16. Robust methods write OUT/vision.safetensors (the vision tower; load it anywhere with
--encoder OUT/vision.safetensors) and OUT/card.json (method, eps, suite, base, data, the whole
recipe, seed, commit, held-out metrics). Checkpoints are atomic; --resume continues at the exact step.
Multi-GPU (or multi-process CPU with gloo): torchrun --nproc_per_node=N -m bench train ...
"""

EXAMPLES = """examples:
  bench train --method fare --eps 4/255 --out runs/fare-4
  bench train --method vlm --out runs/tiny-llava
  bench train --method sim-clip --anchor shared --eps 2/255 --steps 200 --out runs/simclip-shared
  bench train --suite paper --method tecoa --base clip --eps 4/255 --data /data/imagenet/train \\
      --device cuda --grad-checkpointing --out runs/tecoa-4
  torchrun --nproc_per_node=8 -m bench train --suite paper --method fare --eps 2/255 \\
      --data /data/imagenet/train --device cuda --out runs/fare-2
"""

COMMON = {"save_dtype": "float32", "eval_every": 50, "precision": "fp32", "inner_momentum": 0.9}
TINY_TRAIN_SPLITS = "tiny"  # --data tiny: the tiny world's classification train splits


@dataclass(frozen=True)
class Trainer:
    run: Callable[[argparse.Namespace, dict[str, Any]], None]  # (flags, settings = defaults + flags)
    defaults: dict[str, dict[str, Any]]  # per suite it trains on


def _recipe_defaults(recipe: type) -> dict[str, Any]:
    return {f.name: f.default for f in fields(recipe) if f.default is not MISSING}


def _trainers() -> dict[str, Trainer]:
    """Every --method: the tiny CLIP and tiny-llava (their recipes' defaults), and each robust method."""
    from bench.train.clip import ClipRecipe
    from bench.train.methods import ROBUST_METHODS
    from bench.train.vlm import VLMRecipe

    trainers = {"clip": Trainer(_train_tiny_clip, {"tiny": _recipe_defaults(ClipRecipe)}),
                "vlm": Trainer(_train_tiny_vlm, {"tiny": _recipe_defaults(VLMRecipe)})}
    return trainers | {e.name: Trainer(_train_robust, e.value.defaults) for e in ROBUST_METHODS}


def _training_folders(data: str | None, suite: str) -> list[tuple[str, Path]]:
    if data is None:
        if suite != "tiny":
            raise BenchError("--suite paper needs --data: the ImageNet train folder (root/<wnid>/<image>; "
                             "another folder needs classnames.txt)")
        data = TINY_TRAIN_SPLITS
    if data == TINY_TRAIN_SPLITS:
        from bench.tiny.suite import training_folders, world_root

        return training_folders(world_root(None, 0))
    return [(Path(p).name, Path(p).expanduser()) for p in data.split(",")]


def train_command(args: argparse.Namespace) -> None:
    trainers = _trainers()
    if args.method not in trainers:
        raise unknown("method", args.method, trainers, " (bench train --help)")
    trainer = trainers[args.method]
    if args.suite not in trainer.defaults:
        raise BenchError(f"bench train --method {args.method} is not available for --suite {args.suite}: "
                         "clip and vlm are tiny only; sim-clip, fare and tecoa train on either suite")
    if args.out is None:
        from bench.run.eps import eps_label, parse_eps

        tags = {"clip": "tiny-clip", "vlm": "tiny-llava"}
        tag = tags.get(args.method) or f"{args.method}-{eps_label(parse_eps(args.eps)).split('/')[0]}"
        args.out = Path("runs/train") / tag
    # The suite's defaults for the method, overridden by every flag the user gave.
    settings = {**COMMON, **trainer.defaults[args.suite], **{k: v for k, v in vars(args).items() if v is not None}}
    trainer.run(args, settings)


def _train_robust(args: argparse.Namespace, settings: dict[str, Any]) -> None:
    from bench.encoders.hf_clip import HF_CLIP_PREFIX
    from bench.encoders.load import build_encoder
    from bench.run.eps import eps_label, parse_eps
    from bench.suites import resolve_encoder
    from bench.train import distributed
    from bench.train.images import read_training_images
    from bench.train.robust import CARD_FILE, WEIGHTS_FILE, RobustRecipe, train_robust

    eps = parse_eps(args.eps)
    if eps == 0:
        raise BenchError("--eps 0 is clean training; adversarial fine-tuning needs eps > 0, e.g. 4/255")
    if args.inner_momentum is not None and settings["inner_attack"] != "robustvlm":
        raise BenchError(f"--inner-momentum belongs to --inner-attack robustvlm; this run's inner attack is "
                         f"{settings['inner_attack']} (add --inner-attack robustvlm or drop --inner-momentum)")
    recipe = RobustRecipe(method=args.method, eps=eps, steps=settings["steps"], batch_size=settings["batch_size"],
                          lr=settings["lr"], wd=settings["wd"], warmup=settings["warmup"],
                          inner_steps=args.inner_steps, inner_step_size=parse_eps(args.inner_step_size),
                          anchor=settings["anchor"], seed=args.seed, checkpoint_every=args.checkpoint_every,
                          eval_every=settings["eval_every"], holdout=args.holdout,
                          grad_checkpointing=args.grad_checkpointing, save_dtype=settings["save_dtype"],
                          betas=tuple(settings.get("betas", (0.9, 0.95))), decay_all=settings.get("decay_all", False),
                          inner_loss=settings.get("inner_loss", "method"), inner_attack=settings["inner_attack"],
                          inner_momentum=settings["inner_momentum"], schedule=settings["schedule"],
                          precision=settings["precision"])
    spec, name = resolve_encoder(args.base, args.suite)
    if spec.architecture.startswith(HF_CLIP_PREFIX):  # its tower is transformers', not open_clip's
        raise BenchError(f"bench train fine-tunes open_clip towers; --base {args.base} is a transformers CLIPModel "
                         "(hf-clip): start from the open_clip model it was made from, e.g. --base "
                         "open_clip:ViT-L-14/openai")
    data = read_training_images(_training_folders(args.data, args.suite))  # data errors before the model
    procs = distributed.start(args.device)
    try:
        encoder = build_encoder(spec, name)
        base = {"name": name, "architecture": spec.architecture, "source": spec.base,
                "sha256": encoder.provenance.sha256, "quick_gelu": spec.quick_gelu}
        card = train_robust(encoder, base, data, recipe, args.out, args.resume, args.command_line,
                            procs, workers=args.workers)
    finally:
        distributed.stop(procs)
    if card is not None:
        card["eps_label"] = eps_label(eps)
        card["suite"] = args.suite  # whose defaults filled the recipe (every value is in card["recipe"])
        if args.suite == "tiny":
            card["clean_zero_shot_accuracy"] = _tiny_clean_accuracy(str(args.out / WEIGHTS_FILE))
        from bench.train.checkpoint import write_card

        write_card(args.out / CARD_FILE, card)
        print(json.dumps(card["metrics"], indent=1))


def _tiny_clean_accuracy(weights: str) -> dict[str, float]:
    """Clean zero-shot accuracy of the saved weights on every tiny test set, as `bench run` measures it."""
    from bench.run.evaluate import clean_accuracy
    from bench.suites import get_suite, load_encoder, load_task
    from bench.tiny.suite import CLASSIFICATION_TASKS

    encoder, suite = load_encoder(weights, "tiny"), get_suite("tiny")
    return {t: round(clean_accuracy(encoder, load_task(suite, t, None)), 4) for t in CLASSIFICATION_TASKS}


def _train_tiny_clip(args: argparse.Namespace, settings: dict[str, Any]) -> None:
    from bench.encoders.weights import weights_sha256
    from bench.tiny import world
    from bench.tiny.suite import world_root
    from bench.train.checkpoint import write_card
    from bench.train.clip import ClipRecipe, train_clip

    root = world_root(None, 0)
    recipe = ClipRecipe(steps=settings["steps"], batch_size=settings["batch_size"], lr=settings["lr"],
                        wd=settings["wd"], warmup=settings["warmup"], seed=args.seed,
                        checkpoint_every=args.checkpoint_every)
    digest = world.manifest_digest(json.loads((root / "manifest.json").read_text()))
    card = train_clip(root, args.out, recipe, args.resume, args.command_line, digest)
    # The card's accuracies are those of the shipped (fp16) weights, measured as `bench run` would.
    weights = args.out / "clip.safetensors"
    card["clean_zero_shot_accuracy"] = _tiny_clean_accuracy(str(weights))
    card["data_manifest_sha256"] = digest
    card["weights_sha256"] = weights_sha256(weights)
    write_card(args.out / "clip.json", card)
    print(json.dumps(card["clean_zero_shot_accuracy"], indent=1))


def _train_tiny_vlm(args: argparse.Namespace, settings: dict[str, Any]) -> None:
    from bench.suites import load_encoder
    from bench.tiny.suite import world_root
    from bench.train.checkpoint import write_card
    from bench.train.vlm import (
        CARD_FILE,
        WEIGHTS_FILE,
        VLMRecipe,
        tiny_vlm_card_scores,
        train_vlm,
    )

    recipe = VLMRecipe(steps=settings["steps"], batch_size=settings["batch_size"], lr=settings["lr"],
                       wd=settings["wd"], warmup=settings["warmup"], seed=args.seed,
                       checkpoint_every=args.checkpoint_every)
    encoder = load_encoder(args.base, "tiny")
    world = world_root(None, 0)  # verifying the world hashes every file: once
    card = train_vlm(encoder, world, args.out, recipe, args.resume, args.command_line)
    card |= tiny_vlm_card_scores(encoder, args.out / WEIGHTS_FILE, world)
    write_card(args.out / CARD_FILE, card)
    print(json.dumps({k: card[k] for k in ("clean", "trivial_baselines")}, indent=1))


def add_parser(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train an encoder of a suite's zoo (tiny CLIP, Sim-CLIP, FARE, TeCoA)",
                           description=TRAIN_DESCRIPTION, epilog=EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--suite", default="tiny", choices=["tiny", "paper"], help="whose zoo and defaults")
    train.add_argument("--method", default="clip", help="clip | vlm | sim-clip | fare | tecoa (see above)")
    train.add_argument("--base", default="clip", help="encoder to fine-tune: zoo name, open_clip:ARCH/TAG, path")
    train.add_argument("--eps", default="4/255", help="L-inf radius of the inner attack (pixel units)")
    train.add_argument("--data", default=None,
                       help="image folders, comma list (ImageNet train); default on --suite tiny: its train splits")
    train.add_argument("--steps", type=positive_int, default=None, help="optimiser steps (suite/method default)")
    train.add_argument("--batch-size", type=positive_int, default=None, help="global batch, split over processes")
    train.add_argument("--lr", type=positive_float, default=None)
    train.add_argument("--wd", type=non_negative_float, default=None, help="AdamW weight decay")
    train.add_argument("--warmup", type=non_negative_int, default=None, help="linear warmup steps, then cosine")
    train.add_argument("--inner-steps", type=positive_int, default=10, help="PGD steps of the inner attack")
    train.add_argument("--inner-step-size", default="1/255", help="PGD step of the inner attack")
    train.add_argument("--anchor", default=None, choices=["frozen", "script", "shared"],
                       help="Sim-CLIP: script (paper default: the public script's two-term loss on the frozen "
                            "original), frozen (tiny default: its single term, twice the gradient), shared (paper)")
    train.add_argument("--inner-attack", default=None, choices=["robustvlm", "pgd"],
                       help="robustvlm: RobustVLM's PGD with sign momentum (paper default); pgd: the project's "
                            "PGD (tiny default)")
    train.add_argument("--inner-momentum", default=None, type=non_negative_float,
                       help="momentum of --inner-attack robustvlm (RobustVLM's 0.9)")
    train.add_argument("--inner-loss", default=None, choices=["method", "l2"],
                       help="what the inner PGD maximises: the method's own loss, or FARE's L2 to the reference "
                            "embedding (the Sim-CLIP script's; paper default for sim-clip)")
    train.add_argument("--betas", default=None, type=float_pair,
                       help="AdamW betas, e.g. 0.9,0.999 (paper default, RobustVLM's) or 0.9,0.95 (tiny)")
    train.add_argument("--decay-all", default=None, action=argparse.BooleanOptionalAction,
                       help="weight decay on every parameter (paper default, RobustVLM's) instead of sparing "
                            "norms, biases and embeddings")
    train.add_argument("--schedule", default=None, choices=["robustvlm", "ours"],
                       help="warmup + cosine: robustvlm runs step 0 at the base lr as RobustVLM's scheduler does "
                            "(paper default); ours sets the lr of step k before it, from step 0 (tiny default)")
    train.add_argument("--precision", default=None, choices=["fp32", "bf16"],
                       help="fp32 (default, as the reference) or bf16 autocast for every forward")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=None, help="output folder (default runs/train/METHOD[-EPS])")
    train.add_argument("--checkpoint-every", type=positive_int, default=250, help="steps between resumable checkpoints")
    train.add_argument("--eval-every", type=positive_int, default=None, help="steps between held-out robust checks")
    train.add_argument("--holdout", type=positive_int, default=64, help="images kept out of training for the monitor")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    train.add_argument("--device", default="auto",
                       help="auto (CUDA when present) | cpu | cuda | cuda:N")
    train.add_argument("--grad-checkpointing", action="store_true", help="trade compute for memory (ViT-L)")
    train.add_argument("--workers", type=non_negative_int, default=0, help="data-loading processes")
    train.add_argument("--save-dtype", default=None, choices=["float32", "float16", "bfloat16"],
                       help="dtype of the saved vision tower (tiny zoo: float16)")
