"""A word-level tokenizer for the tiny world: a ~100-word vocabulary instead of CLIP's 49k BPE,
so the tiny CLIP's text embedding table stays small enough to ship."""
from __future__ import annotations

import re

import torch
from torch import Tensor

from bench.tiny.language import BACKGROUND_WORDS, NUMBER_WORDS
from bench.tiny.scenes import COLOURS, COUNT_WORDS, SHAPES, SIZES, WORDS

_GRAMMAR = """a an the of on with and there is are next to sign that says picture photo image
background shape shapes object objects what color colour how many does say yes no drawing
this it in""".split()

PAD, SOT, UNK = "<pad>", "<sot>", "<unk>"
EOT = "<eot>"  # must have the largest id: open_clip pools the text at argmax(token id)


def vocabulary() -> list[str]:
    words = {*_GRAMMAR, *SHAPES, *(s + "s" for s in SHAPES), *COLOURS, *COUNT_WORDS, *WORDS, *SIZES,
             *BACKGROUND_WORDS.values(), *NUMBER_WORDS, "0", "4", "5", "6", "7", "8", "9"}
    return [PAD, SOT, UNK, *sorted(words), EOT]


class WordTokenizer:
    """Callable like open_clip's tokenizers: list of texts -> LongTensor [N, context_length]."""

    def __init__(self, context_length: int = 32) -> None:
        self.vocab = vocabulary()
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.context_length = context_length

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        unk = self.index[UNK]
        return [self.index.get(w, unk) for w in re.findall(r"[a-z0-9]+", text.lower())]

    def __call__(self, texts: str | list[str], context_length: int | None = None) -> Tensor:
        texts = [texts] if isinstance(texts, str) else texts
        length = context_length or self.context_length
        out = torch.zeros(len(texts), length, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = [self.index[SOT], *self.encode(text)][: length - 1] + [self.index[EOT]]
            out[i, : len(ids)] = torch.tensor(ids)
        return out
