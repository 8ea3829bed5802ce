"""Encoders: open_clip models in pixel space, loaded from any source with provenance."""
from bench.encoders.base import Encoder, Provenance
from bench.encoders.load import EncoderSpec, build_encoder, spec_for_source

__all__ = ["Encoder", "Provenance", "EncoderSpec", "build_encoder", "spec_for_source"]
