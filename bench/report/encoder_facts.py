"""What an encoder is, for the leaderboard's rows and the encoder pages: architecture, training
method, training eps and source.

A run's config records the encoder's provenance (source, architecture, sha256). The training
method and eps come from the card `bench train` wrote beside the weights where there is one (the
tiny zoo ships its cards), else from the suite zoo's entry the provenance names (bench/encoders/zoo.py:
its description names the method and "eps N/255"); a checkpoint path without a card has neither.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchutil.errors import BenchError

UNKNOWN = "—"  # shown for a fact no config, card or zoo entry states
_EPS = re.compile(r"\beps (\d+(?:\.\d+)?/255)")


@dataclass(frozen=True)
class EncoderFacts:
    architecture: str | None
    method: str | None  # "fare", "tecoa", "sim-clip", "clip" (contrastive, not adversarial)...
    training_eps: str | None  # "4/255"
    source: str | None
    sha256: str | None
    card: dict[str, Any] | None  # bench train's card, where the weights have one

    def shown(self, value: str | None) -> str:
        return UNKNOWN if value in (None, "") else value

    @property
    def search_text(self) -> str:
        """What the index's search box matches besides the encoder's name."""
        return " ".join(v for v in (self.method, self.source) if v)


def training_card(provenance: dict[str, Any]) -> dict[str, Any] | None:
    """The card `bench train` wrote for the encoder's weights, where there is one. A source "BASE +
    VISION" is a vision tower fine-tuned from BASE: only the tower's own card describes it (the
    base's card would name the base's training)."""
    import bench.suites  # noqa: F401  (every suite's shipped weights registered with the loader: tiny:NAME)
    from bench.encoders.load import read_card, shipped_file

    parts = _parts(provenance)
    if not parts:
        return None
    weights = parts[-1]
    candidates = ([shipped_file(weights, ".json")] if weights.startswith("tiny:")
                  else [Path(weights).with_suffix(".json"), Path(weights).with_name("card.json")])  # as the loader
    for path in candidates:
        if path.is_file():
            try:
                return read_card(path)
            except BenchError:  # a broken card beside someone's weights: no card, not a crash
                continue
    return None


def zoo_description(encoder: str, provenance: dict[str, Any]) -> str | None:
    """The description of the suite zoo entry named `encoder` whose weights are the ones the run
    recorded (the tiny and paper zoos share names: the source tells them apart)."""
    from bench.suites import SUITES

    parts = set(_parts(provenance))
    for suite in SUITES:
        zoo = suite.value.encoders
        if encoder in zoo:
            entry = zoo.get(encoder)
            if parts and parts == {entry.value.base, entry.value.vision} - {None}:
                return entry.provenance
    return None


def zoo_card(encoder: str, provenance: dict[str, Any]) -> Any:
    """The paper zoo's card of `encoder` (bench.encoders.zoo.PAPER_CARDS) when the run's weights are
    that entry's; None otherwise."""
    from bench.encoders.zoo import PAPER_CARDS

    card = PAPER_CARDS.get(encoder)
    return card if card is not None and zoo_description(encoder, provenance) is not None else None


def _method_in(description: str) -> str | None:
    """The training method a zoo description names: the robust fine-tunes' paper names, else CLIP."""
    from bench.tiny.suite import ROBUST_METHODS

    for method, title in sorted(ROBUST_METHODS.items(), key=lambda m: -len(m[1])):  # "Sim-CLIP" before "CLIP"
        if re.search(rf"\b{re.escape(title)}\b", description):
            return method
    return "clip" if "CLIP" in description else None


def encoder_facts(encoder: str, provenance: dict[str, Any]) -> EncoderFacts:
    card = training_card(provenance)
    method = eps = None
    if card:
        method, eps = card.get("method"), card.get("eps_label")
    elif zoo_card(encoder, provenance) is not None:  # the paper zoo's card says it outright
        zoo = zoo_card(encoder, provenance)
        method, eps = zoo.method, zoo.eps
    else:
        description = zoo_description(encoder, provenance)
        if description:
            method = _method_in(description)
            found = _EPS.search(description)
            eps = found.group(1) if found else None
    return EncoderFacts(_text(provenance.get("architecture")), _text(method), _text(eps),
                        _text(provenance.get("source")), _text(provenance.get("sha256")), card)


def _parts(provenance: dict[str, Any]) -> list[str]:
    return [p.strip() for p in str(provenance.get("source") or "").split(" + ") if p.strip()]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
