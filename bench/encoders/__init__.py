"""Encoders: CLIP models (open_clip, or transformers CLIPModel) in pixel space, loaded from any source with
provenance, and their weights.
The bottom layer of bench: imports only benchutil (other packages register with it, bench.tiny).
"""
from bench.encoders.base import Encoder, Provenance
from bench.encoders.load import EncoderSpec, build_encoder, spec_for_source

__all__ = ["Encoder", "Provenance", "EncoderSpec", "build_encoder", "spec_for_source"]
