"""How close APGD comes to the model's own speed: the share of the attack's wall time spent in
the model's forward + backward (100% is the limit: the attack's own arithmetic is free), and
image-iterations per second; on CUDA also the share of the bf16 FLOP peak it reaches.

    python -m benchmarks.attack_efficiency [--arch ViT-L-14] [--batch 32] [--steps 10]
        [--precision fp32|tf32|bf16] [--device cuda] [--peak-tflops 989]

On a CPU the default is a small ViT so that it finishes in seconds. Writes
benchmarks/out/attack_efficiency_<device>.json.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import open_clip
import torch
from torch import Tensor, nn

import bench.encoders.load  # noqa: F401  (registers the project's tiny open_clip configs)
from attacks import apgd
from attacks.precision import AttackPrecision, tf32
from benchmarks.common import environment, print_table, write_json

# Forward + backward to the input of a ViT-L/14 at 224 px, per image (about 3x the 81 GFLOP forward).
GFLOP_PER_IMAGE_ITERATION = {"ViT-L-14": 243.0}


def zero_shot_vit(arch: str, classes: int, device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    clip = open_clip.create_model(arch, pretrained=None).to(device).eval()
    weights = nn.functional.normalize(torch.randn(classes, clip.visual.output_dim, device=device), dim=-1)

    class Victim(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.visual = clip.visual

        def forward(self, x: Tensor) -> Tensor:
            return 100 * nn.functional.normalize(self.visual(x), dim=-1) @ weights.T

    return Victim().eval()


def run(arch: str, batch: int, steps: int, precision: str, device: torch.device, peak_tflops: float | None) -> dict:
    model = zero_shot_vit(arch, 10, device)
    size = model.visual.image_size[0] if isinstance(model.visual.image_size, tuple) else model.visual.image_size
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        y = model(x).argmax(1)
    attacked = AttackPrecision(model, precision)
    with tf32(precision == "tf32"):
        apgd(attacked, x, y, eps=1e-9, steps=1)  # warm-up (kernels, allocator)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        apgd(attacked, x, y, eps=1e-9, steps=steps)  # eps tiny: nobody breaks, every image runs every step
        if device.type == "cuda":
            torch.cuda.synchronize()
        total = time.perf_counter() - start
        # The model alone: the same forward + backward passes to the input, the attack's unavoidable work.
        model_only = _model_seconds(model, x, y, steps, precision, device)
    image_iterations = batch * (steps + 1)
    row = {"arch": arch, "precision": precision, "batch": batch, "steps": steps, "attack s": total,
           "model fwd+bwd s": model_only, "model share %": 100 * model_only / total,
           "img-it/s": image_iterations / total}
    flops = GFLOP_PER_IMAGE_ITERATION.get(arch)
    if device.type == "cuda" and flops and peak_tflops:
        row["% of bf16 peak"] = 100 * row["img-it/s"] * flops / (peak_tflops * 1000)
    return row


def _model_seconds(model: nn.Module, x: Tensor, y: Tensor, steps: int, precision: str, device: torch.device) -> float:
    """The same number of forward + backward passes to the input, nothing else."""
    wrapped = AttackPrecision(model, precision)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps + 1):
        xi = x.detach().requires_grad_(True)
        loss = nn.functional.cross_entropy(wrapped(xi), y)
        (grad,) = torch.autograd.grad(loss, xi)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cuda = torch.cuda.is_available()
    parser.add_argument("--arch", default="ViT-L-14" if cuda else "tiny-vit-test")
    parser.add_argument("--batch", type=int, default=32 if cuda else 16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--precisions", default="fp32,tf32,bf16" if cuda else "fp32")
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 dense peak (H100/H200 SXM: 989)")
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = [run(args.arch, args.batch, args.steps, p, device, args.peak_tflops) for p in args.precisions.split(",")]
    print_table(rows, list(rows[0]))
    write_json(Path(f"benchmarks/out/attack_efficiency_{device.type}.json"),
               {"environment": environment(), "settings": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
