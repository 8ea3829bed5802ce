"""robust-vlm-bench: adversarial robustness of CLIP encoders and the VLMs built on them."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.encoders import Encoder


def load_encoder(name_or_path: str, suite: str | None = None, device: str = "cpu",
                 arch: str | None = None) -> Encoder:
    """An encoder from the suite's zoo, an open_clip tag, a hub id or a checkpoint file.

    Returns a pixel-space model ([0,1] NCHW in, normalisation inside) with encode_image,
    encode_text, tokenizer, image_size and provenance (source, sha256).
    """
    from bench.encoders.load import build_encoder, is_source, spec_for_source, with_architecture
    from bench.suites import get_suite

    zoo = get_suite(suite).encoders
    if name_or_path in zoo:
        entry = zoo.get(name_or_path)
        return build_encoder(with_architecture(entry.value, arch), entry.name, device)
    if not is_source(name_or_path):
        from bench.errors import unknown

        raise unknown("encoder", name_or_path, zoo.names(), " (bench list encoders, or give a checkpoint path)")
    return build_encoder(spec_for_source(name_or_path, arch), name_or_path, device)


__all__ = ["load_encoder"]
