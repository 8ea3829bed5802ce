"""Text codecs: what a VLM needs from a tokenizer (ids in, ids out, the special ids).

One small interface lets the same VLM code drive a Hugging Face tokenizer (LLaVA) and the
tiny suite's word vocabulary.
"""
from __future__ import annotations

import re
from typing import Any, Protocol

from benchutil.errors import BenchError


class TextCodec(Protocol):
    bos_id: int | None
    eos_id: int
    pad_id: int

    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...
    def check(self, text: str, what: str) -> None: ...


class HFCodec:
    """A transformers tokenizer; specials are added by the VLM's prompt frame, not here."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.bos_id = tokenizer.bos_token_id
        self.eos_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def check(self, text: str, what: str) -> None:
        if not self.encode(text):
            raise BenchError(f"{what} {text!r} encodes to no tokens; give a non-empty string")


class WordCodec:
    """Lower-case words and digits; punctuation is dropped (PTB tokenisation drops it too)."""

    SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>", "<sep>")

    def __init__(self, words: list[str]) -> None:
        self.vocab = [*self.SPECIALS, *sorted(set(words) - set(self.SPECIALS))]
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.pad_id, self.bos_id, self.eos_id, self.unk_id, self.sep_id = range(len(self.SPECIALS))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @staticmethod
    def words(text: str) -> list[str]:
        return re.findall(r"[a-z0-9]+", text.lower())

    def encode(self, text: str) -> list[int]:
        return [self.index.get(w, self.unk_id) for w in self.words(text)]

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.vocab[i] for i in ids if i >= len(self.SPECIALS))

    def check(self, text: str, what: str) -> None:
        missing = [w for w in self.words(text) if w not in self.index]
        if missing or not self.words(text):
            raise BenchError(f"{what} {text!r} has words the tiny VLM does not know ({', '.join(missing) or 'none'}); "
                             f"use words from its vocabulary (bench list vlms shows where it is defined)")
