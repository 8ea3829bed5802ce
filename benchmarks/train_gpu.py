"""One adversarial fine-tuning step at paper scale: step time, peak memory, steps per hour.

Default: Sim-CLIP (frozen anchor) on open_clip ViT-L-14 (random init, 224 px), batch 64,
PGD-10, bf16 autocast on CUDA, with and without gradient checkpointing. On a CPU, smoke it
with a small model: python -m benchmarks.train_gpu --arch tiny-clip --batch-size 8 --device cpu

    python -m benchmarks.train_gpu [--device cuda] [--methods sim-clip,fare,tecoa]
"""
from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch

from bench.encoders.load import EncoderSpec, build_encoder
from bench.train.methods import Batch, ZeroShotHead, make_method
from bench.train.optim import param_groups
from bench.train.robust import RobustRecipe, VisionTower, adversarial_loss, autocast_for
from benchmarks.common import environment, measure, print_table, write_json


def one_config(arch: str, method: str, batch_size: int, checkpointing: bool, device: torch.device,
               steps: int) -> dict:
    encoder = build_encoder(EncoderSpec(arch, "random"), arch, device)
    encoder.requires_grad_(False)
    if checkpointing:
        encoder.clip.set_grad_checkpointing(True)
    tower = VisionTower(encoder)
    frozen = copy.deepcopy(tower).requires_grad_(False)
    tower.requires_grad_(True)
    classes = 10
    head = ZeroShotHead(torch.nn.functional.normalize(torch.randn(classes, encoder.clip.visual.output_dim,
                                                                  device=device), dim=-1))
    recipe = RobustRecipe(method=method, eps=4 / 255, steps=steps, batch_size=batch_size, lr=1e-5, wd=1e-4,
                          warmup=1)
    optimizer = torch.optim.AdamW(param_groups(tower, recipe.wd), lr=recipe.lr)
    generator = torch.Generator(device="cpu").manual_seed(0)
    x = torch.rand(batch_size, 3, encoder.image_size, encoder.image_size, generator=generator).to(device)
    batch = Batch(x, torch.randint(0, classes, (batch_size,), generator=generator).to(device),
                  torch.ones(batch_size, classes, dtype=torch.bool, device=device))
    autocast = autocast_for(device, "bf16" if device.type == "cuda" else "fp32")  # `bench train --precision bf16`
    chosen = make_method(method, "frozen", frozen, head)

    def train_step(seed: int) -> None:  # what bench train's loop does per step
        loss = adversarial_loss(chosen, tower, tower, batch, recipe, seed, autocast)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    train_step(0)  # warm-up (allocator, kernels)
    m = measure(lambda: [train_step(i) for i in range(steps)], device)
    seconds = m.seconds / steps
    return {"arch": arch, "method": method, "batch": batch_size, "grad_ckpt": checkpointing,
            "bf16": device.type == "cuda", "step_s": seconds, "steps_per_hour": 3600 / seconds,
            "peak_mb": m.peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="ViT-L-14")
    parser.add_argument("--methods", default="sim-clip")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/train_gpu.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    for method in args.methods.split(","):
        for checkpointing in (False, True):
            rows.append(one_config(args.arch, method, args.batch_size, checkpointing, device, args.steps))
            if device.type == "cuda":
                torch.cuda.empty_cache()
    print_table(rows, ["arch", "method", "batch", "grad_ckpt", "bf16", "step_s", "steps_per_hour", "peak_mb"])
    write_json(args.out, {"environment": environment(), "rows": rows})


if __name__ == "__main__":
    main()
