"""VLMs: registries of loaders that wrap a language model around any `load_encoder` result.

Every VLM offers `generate(images, prompts, max_new_tokens) -> list[str]` and
`loss(images, prompts, targets) -> per-sample tensor` (differentiable w.r.t. the pixels),
batched; images are [N, 3, S, S] in [0, 1] at the encoder's resolution.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from bench.errors import BenchError
from bench.registry import Registry
from bench.vlm.projected import ProjectedVLM  # also the shape of FlamingoVLM (same methods)

LLAVA_PREFIX = "llava:"


@dataclass(frozen=True)
class VLMSpec:
    load: Callable[[nn.Module, str, str], ProjectedVLM]  # (encoder, device, name) -> VLM


def tiny_vlms() -> Registry[VLMSpec]:
    from bench.encoders.load import TINY_WEIGHTS
    from bench.vlm.tiny_llava import load_tiny_llava

    vlms: Registry[VLMSpec] = Registry("vlm")
    vlms.add("tiny-llava", VLMSpec(lambda e, d, n: load_tiny_llava(e, TINY_WEIGHTS / "tiny-llava.safetensors", d)),
             "tiny CLIP patch tokens -> MLP -> 2-layer Llama, trained on the tiny world (bench/tiny/weights/tiny-llava.json)")
    return vlms


def paper_vlms() -> Registry[VLMSpec]:
    from bench.vlm.flamingo import load_open_flamingo_9b
    from bench.vlm.llava import load_llava

    vlms: Registry[VLMSpec] = Registry("vlm")
    vlms.add("llava-1.5-7b", VLMSpec(lambda e, d, n: load_llava(e, "llava-hf/llava-1.5-7b-hf", d, n)),
             "LLaVA-1.5-7B (hf llava-hf/llava-1.5-7b-hf), encoder swapped the RobustVLM way: 224 px, 256 tokens")
    vlms.add("open-flamingo-9b", VLMSpec(load_open_flamingo_9b),
             "OpenFlamingo-9B (openflamingo/OpenFlamingo-9B-vitl-mpt7b + MPT-7B), the encoder's ViT-L/14 swapped in; "
             "needs: pip install --no-deps open_flamingo einops einops-exts")
    return vlms


def load_vlm(name: str, registry: Registry[VLMSpec], encoder: nn.Module, device: str) -> ProjectedVLM:
    """A registered VLM, or `llava:PATH_OR_HUB_ID` for any checkpoint in the llava-hf format."""
    if name.startswith(LLAVA_PREFIX):
        from bench.vlm.llava import load_llava

        return load_llava(encoder, name.removeprefix(LLAVA_PREFIX), device, name)
    entry = registry.get(name)
    vlm = entry.value.load(encoder, device, entry.name)
    return vlm.to(device).eval()


def check_vlm_name(name: str, registry: Registry[VLMSpec]) -> None:
    if not name.startswith(LLAVA_PREFIX):
        registry.get(name)
    elif not name.removeprefix(LLAVA_PREFIX):
        raise BenchError("--vlm llava: needs a folder or hub id after the colon, e.g. llava:llava-hf/llava-1.5-7b-hf")


__all__ = ["LLAVA_PREFIX", "ProjectedVLM", "VLMSpec", "check_vlm_name", "load_vlm", "paper_vlms", "tiny_vlms"]
