"""robust-vlm-bench: adversarial robustness of CLIP encoders and the VLMs built on them."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.encoders import Encoder
    from bench.encoders.load import EncoderSpec


def resolve_encoder(name_or_path: str, suite: str | None = None, arch: str | None = None,
                    base: str | None = None) -> tuple[EncoderSpec, str]:
    """(what to load, the name to record) for a zoo name, an open_clip tag, a hub id or a path.

    base: the model a vision-only checkpoint was fine-tuned from (a zoo name or a source);
    its text tower (and architecture, unless `arch` says otherwise) completes the checkpoint.
    """
    from bench.encoders.load import (
        is_source,
        spec_for_source,
        with_architecture,
        with_base,
    )
    from bench.suites import get_suite
    from benchutil.errors import BenchError, unknown

    zoo = get_suite(suite).encoders
    if name_or_path in zoo:
        if base is not None:
            raise BenchError(f"--base applies to checkpoint files; {name_or_path!r} is a zoo encoder with its own base")
        entry = zoo.get(name_or_path)
        return with_architecture(entry.value, arch), entry.name
    if not is_source(name_or_path):
        raise unknown("encoder", name_or_path, zoo.names(), " (bench list encoders, or give a checkpoint path)")
    if base is None:
        return spec_for_source(name_or_path, arch), name_or_path
    base_spec, _ = resolve_encoder(base, suite, arch)
    return with_base(spec_for_source(name_or_path, arch or base_spec.architecture), base_spec), name_or_path


def load_encoder(name_or_path: str, suite: str | None = None, device: str = "cpu",
                 arch: str | None = None, base: str | None = None) -> Encoder:
    """An encoder from the suite's zoo, an open_clip tag, a hub id or a checkpoint file.

    Returns a pixel-space model ([0,1] NCHW in, normalisation inside) with encode_image,
    encode_text, tokenizer, image_size and provenance (source, sha256).
    """
    from bench.encoders.load import build_encoder

    spec, name = resolve_encoder(name_or_path, suite, arch, base)
    return build_encoder(spec, name, device)


__all__ = ["load_encoder", "resolve_encoder"]
