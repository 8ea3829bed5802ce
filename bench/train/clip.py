"""Contrastive pre-training of the tiny CLIP on the tiny world's captions (CPU, deterministic)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F

import bench.encoders.load  # noqa: F401  (registers the tiny-clip open_clip config)
from bench.encoders.base import Encoder, Provenance
from bench.run.environment import git_commit, versions
from bench.tiny.tokenizer import WordTokenizer
from bench.train import loop
from bench.train.checkpoint import save_weights, write_card
from bench.train.data import EpochSampler, read_caption_split
from bench.train.optim import param_groups

ARCH = "tiny-clip"


@dataclass(frozen=True)
class ClipRecipe:
    steps: int = 1500
    batch_size: int = 128
    lr: float = 2e-3
    wd: float = 0.1
    warmup: int = 100
    seed: int = 0
    checkpoint_every: int = 250
    # How often each of the 5 references is the positive: the world writes the shapes-only
    # reference first and the colours-only one second; shape is the hard part to learn.
    caption_weights: tuple[float, ...] = (0.4, 0.2, 0.4 / 3, 0.4 / 3, 0.4 / 3)


def _encoder(model: torch.nn.Module) -> Encoder:
    cfg = open_clip.get_model_preprocess_cfg(model)
    return Encoder(model, WordTokenizer(), 64, tuple(cfg["mean"]), tuple(cfg["std"]),
                   Provenance("training", ARCH, "training", "training", False))


def train_clip(world: Path, out: Path, recipe: ClipRecipe, resume: bool, command: list[str],
               data_digest: str) -> dict[str, Any]:
    torch.manual_seed(recipe.seed)
    torch.use_deterministic_algorithms(True)
    out.mkdir(parents=True, exist_ok=True)
    data = read_caption_split(world, "train")
    tokenizer = WordTokenizer()
    tokens = torch.stack([tokenizer(caps) for caps in data.captions])  # [N, 5, ctx]
    model = open_clip.create_model(ARCH, pretrained=None)
    encoder = _encoder(model).train()
    optimizer = torch.optim.AdamW(param_groups(model, recipe.wd), lr=recipe.lr, betas=(0.9, 0.98), eps=1e-6)
    generator = torch.Generator().manual_seed(recipe.seed)
    sampler = EpochSampler(len(data.captions), recipe.batch_size, generator)
    caption_weights = torch.tensor(recipe.caption_weights)

    def loss(step: int) -> torch.Tensor:
        idx = sampler.next()
        which = torch.multinomial(caption_weights, len(idx), replacement=True, generator=generator)
        image = encoder.encode_image(data.images[idx].float() / 255)
        text = encoder.encode_text(tokens[idx, which])
        logits = model.logit_scale.exp().clamp(max=100) * image @ text.T
        labels = torch.arange(len(idx))
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2

    job = loop.Job("train tiny clip", out, recipe.steps, recipe.lr, recipe.warmup, recipe.checkpoint_every, model,
                   optimizer, {"recipe": asdict(recipe), "data": data_digest}, loss, generator=generator,
                   extra_state=lambda: {"sampler": sampler.state()},
                   restore_extra=lambda extra: sampler.load(extra["sampler"]))
    outcome = loop.run(job, resume)
    weights = out / "clip.safetensors"
    save_weights(weights, model.state_dict(), {"architecture": ARCH}, torch.float16)
    card = {"name": "clip", "method": "clip", "architecture": ARCH, "recipe": asdict(recipe),
            "command": " ".join(command), "data": "tiny world captions, train split",
            "weights_dtype": "float16", "no_weight_decay_on": "norms, biases, embeddings, logit_scale",
            "versions": versions(), "git_commit": git_commit(),
            "train_seconds_this_session": round(outcome.seconds, 1)}
    write_card(out / "clip.json", card)
    return card
