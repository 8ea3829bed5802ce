"""The GPU check in one script (< 8 minutes on one H200): APGD image-iterations/s on a random
ViT-L/14 at 224 px in fp32 / tf32 / bf16, a LLaVA-1.5-7B-shaped random VLM's attack
sample-iterations/s, and from these the estimated wall time of the whole paper suite on 1
and 8 GPUs. On a CPU it runs the same code with tiny shapes (a test smoke-runs it).

    python -m benchmarks.gpu_suite [--device cuda]

Writes benchmarks/out/gpu_suite_<device>.json and prints a table.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

from attacks import run_apgd
from attacks.precision import autocast
from bench.encoders.load import EncoderSpec, build_encoder
from bench.vlm.tiny_llava import assemble, build_parts
from benchmarks.attack_efficiency import run as apgd_rate
from benchmarks.common import environment, print_table, write_json
from tasks.vlm_attack import LMObjective

# The paper suite (docs/protocol.md): 7 encoders x 2 eps; zero-shot ImageNet 5000 + 13 x 1000;
# captioning / VQA 500 samples on COCO, Flickr30k, VQAv2, TextVQA, 100 iterations per pass.
ENCODERS, EPS = 7, 2
ZERO_SHOT_SAMPLES = 5000 + 13 * 1000
VLM_SAMPLES, VLM_TASKS, PASSES_PER_SAMPLE = 500, 4, 7  # 5 references (+2 VQA pushes) + 1 refinement
# APGD-CE (1 restart always, 4 more on robust samples) + APGD-T (9 targets on robust samples),
# 100 iterations each; with ~40% of samples robust that is ~620 image-iterations per sample.
ROBUST_SHARE = 0.4
ZERO_SHOT_ITERATIONS = 100 * (1 + 4 * ROBUST_SHARE + 9 * ROBUST_SHARE)


def vlm_rate(shape: str, batch: int, steps: int, device: torch.device, precision: str) -> float:
    """Sample-iterations/s of APGD on the caption loss of a random VLM of the given shape."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if shape == "llava-1.5-7b":
        encoder = build_encoder(EncoderSpec("ViT-L-14", "random", quick_gelu=True), "random", device)
        width, hidden = encoder.visual.transformer.width, 4096
        projector = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        config = LlamaConfig(vocab_size=32000, hidden_size=hidden, intermediate_size=11008, num_hidden_layers=32,
                             num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096)
        with torch.device(device):
            lm = LlamaForCausalLM(config).to(torch.bfloat16 if device.type == "cuda" else torch.float32)
        vlm = assemble(encoder, projector.to(device, lm.dtype), lm, "llava-shaped")
    else:  # the tiny world's shape, for CPUs
        encoder = build_encoder(EncoderSpec("tiny-clip", "random"), "random", device)
        projector, lm = build_parts(encoder.visual.transformer.width, seed=0)
        vlm = assemble(encoder, projector.to(device), lm.to(device), "tiny-shaped")
    vlm.eval().requires_grad_(False)
    size = vlm.image_size
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    prompts, targets = ["describe the image"] * batch, ["a red circle and a blue square"] * batch
    objective = LMObjective(vlm, prompts, targets, towards=False)
    with autocast(precision, device):
        run_apgd(objective, x, eps=4 / 255, steps=1, random_start=False, stop_on_success=False)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run_apgd(objective, x, eps=4 / 255, steps=steps, random_start=False, stop_on_success=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return batch * (steps + 1) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cuda = torch.cuda.is_available()
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    arch, batch = ("ViT-L-14", 64) if gpu else ("tiny-vit-test", 8)
    rows = [apgd_rate(arch, batch, 10 if gpu else 3, p, device, 989.0) for p in (("fp32", "tf32", "bf16") if gpu
                                                                                  else ("fp32",))]
    best = max(r["img-it/s"] for r in rows)
    shape, vlm_batch = ("llava-1.5-7b", 8) if gpu else ("tiny", 4)
    vlm = vlm_rate(shape, vlm_batch, 5 if gpu else 2, device, "bf16" if gpu else "fp32")
    zero_shot_hours = ENCODERS * EPS * ZERO_SHOT_SAMPLES * ZERO_SHOT_ITERATIONS / best / 3600
    vlm_hours = ENCODERS * EPS * VLM_TASKS * VLM_SAMPLES * PASSES_PER_SAMPLE * 100 / vlm / 3600
    estimate = {"zero-shot GPU-hours": zero_shot_hours, "captioning/VQA GPU-hours": vlm_hours,
                "total GPU-hours": zero_shot_hours + vlm_hours,
                "wall hours on 8 GPUs": (zero_shot_hours + vlm_hours) / 8,
                "assumptions": f"{ENCODERS} encoders x {EPS} eps; {ROBUST_SHARE:.0%} of zero-shot samples robust; "
                               f"{PASSES_PER_SAMPLE} VLM passes x 100 iterations; generation and data time excluded",
                "vlm sample-it/s": vlm, "vlm shape": shape, "best img-it/s": best}
    print_table(rows, list(rows[0]))
    print({k: round(v, 2) if isinstance(v, float) else v for k, v in estimate.items()})
    write_json(Path(f"benchmarks/out/gpu_suite_{device.type}.json"),
               {"environment": environment(), "rows": rows, "estimate": estimate})


if __name__ == "__main__":
    main()
