"""VLMs: loaders that wrap a language model around any `load_encoder` result.

Every VLM implements tasks.contracts.VLM (generate, loss, target_logits, batched; images
[N, 3, S, S] in [0, 1] at the encoder's resolution) and registers its loader for a suite
beside its code (bench.vlm.registry.register_vlm). May import bench.tiny and bench.encoders (and
tasks/ for the VLM contract); never bench.suites, bench.run or above.
"""
from __future__ import annotations

from torch import nn

from bench.vlm.llava import load_llava
from bench.vlm.projected import ProjectedVLM
from bench.vlm.registry import VLMSpec, register_vlm, suite_vlms
from benchutil.errors import BenchError
from benchutil.registry import Registry

LLAVA_PREFIX = "llava:"


def tiny_vlms() -> Registry[VLMSpec]:
    return suite_vlms("tiny")


def paper_vlms() -> Registry[VLMSpec]:
    return suite_vlms("paper")


def load_vlm(name: str, registry: Registry[VLMSpec], encoder: nn.Module, device: str) -> ProjectedVLM:
    """A registered VLM, or `llava:PATH_OR_HUB_ID[@BASE]` for a checkpoint in the llava-hf format or
    LLaVA's original one (merged, or LoRA over BASE: bench/vlm/llava_original.py)."""
    if name.startswith(LLAVA_PREFIX):
        return load_llava(encoder, name.removeprefix(LLAVA_PREFIX), device, name)
    entry = registry.get(name)
    vlm = entry.value.load(encoder, device, entry.name)
    return vlm.to(device).eval()


def check_vlm_name(name: str, registry: Registry[VLMSpec]) -> None:
    if not name.startswith(LLAVA_PREFIX):
        registry.get(name)
    elif not name.removeprefix(LLAVA_PREFIX):
        raise BenchError("--vlm llava: needs a folder or hub id after the colon, e.g. llava:llava-hf/llava-1.5-7b-hf")


__all__ = ["LLAVA_PREFIX", "ProjectedVLM", "VLMSpec", "check_vlm_name", "load_vlm", "paper_vlms", "register_vlm",
           "suite_vlms", "tiny_vlms"]
