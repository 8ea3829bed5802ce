"""A user's own model made evaluable: what `bench.benchmark(model, ...)` accepts.

Three kinds, told apart by what the object offers:

* an `Encoder` (what `bench.load_encoder` returns): used as it is;
* an open_clip model (`encode_image`, `encode_text` and a `visual` tower, no normalisation inside):
  wrapped in an `Encoder` with its own preprocessing's mean / std and open_clip's tokenizer, so it
  works with every task, VLMs included;
* any module with `encode_image(x, normalize=True)`, `encode_text(tokens, normalize=True)`,
  `tokenizer` and `image_size` (the Encoder contract: images in [0,1], normalisation inside):
  zero-shot classification and retrieval;
* a plain classifier `images in [0,1] -> logits`, given with `class_names`: classification tasks.

Each gets a provenance like a zoo encoder's: the name runs record, where it came from (its Python
class) and the sha256 of its weights as `bench.encoders.weights.state_sha256` computes it, so two
different modules never share a run folder and the same weights resume the same runs.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import open_clip
from torch import Tensor, nn

from bench.encoders.base import Encoder, Provenance
from bench.encoders.weights import state_sha256
from benchutil.errors import BenchError
from tasks.classifier import LabelledClassifier

CONTRACT = ("encode_image", "encode_text", "tokenizer", "image_size")


def _provenance(model: nn.Module, name: str) -> Provenance:
    kind = type(model)
    return Provenance(name=name, architecture=kind.__name__, source=f"python:{kind.__module__}.{kind.__qualname__}",
                      sha256=state_sha256(model.state_dict()), quick_gelu=False)


def _is_open_clip(model: nn.Module) -> bool:
    return all(hasattr(model, a) for a in ("encode_image", "encode_text", "visual")) and not hasattr(model, "tokenizer")


def _open_clip_encoder(model: nn.Module, name: str, tokenizer: Callable[[list[str]], Tensor] | None) -> Encoder:
    """open_clip's CLIP normalises outside the model; our Encoder normalises inside (eps in pixels)."""
    preprocess = getattr(model.visual, "preprocess_cfg", {}) or {}
    size = model.visual.image_size
    image_size = size[0] if isinstance(size, (tuple, list)) else int(size)
    if tokenizer is None:  # open_clip's BPE (OpenAI's vocabulary) at the model's context length
        context = getattr(model, "context_length", 77)
        tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=context)
    return Encoder(model, tokenizer, image_size, tuple(preprocess.get("mean", open_clip.OPENAI_DATASET_MEAN)),
                   tuple(preprocess.get("std", open_clip.OPENAI_DATASET_STD)), _provenance(model, name))


class ContractEncoder(nn.Module):
    """A user's module that already meets the Encoder contract, with a provenance added."""

    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = model.tokenizer
        self.image_size = int(model.image_size)
        self.provenance = getattr(model, "provenance", None) or _provenance(model, name)
        if self.provenance.name != name:
            self.provenance = replace(self.provenance, name=name)

    def encode_image(self, x: Tensor, normalize: bool = True) -> Tensor:
        return self.model.encode_image(x, normalize=normalize)

    def encode_text(self, tokens: Tensor, normalize: bool = True) -> Tensor:
        return self.model.encode_text(tokens, normalize=normalize)

    def forward(self, x: Tensor) -> Tensor:
        return self.encode_image(x)


def evaluable(model: Any, name: str | None, class_names: Sequence[str] | None = None,
              image_size: int | None = None, tokenizer: Callable[[list[str]], Tensor] | None = None) -> nn.Module:
    """The model as the tasks take it; `name` is what its runs record (default: its class name)."""
    if not isinstance(model, nn.Module):
        raise BenchError(f"model is a {type(model).__name__}, not a torch.nn.Module; give an encoder, an open_clip "
                         "model, or a classifier with class_names (or a zoo name / checkpoint path as a string)")
    if class_names is not None:
        model.eval()
        name = name or type(model).__name__.lower()
        return LabelledClassifier(model, list(class_names), image_size or 224, _provenance(model, name))
    if image_size is not None:
        raise BenchError("image_size applies to a classifier given with class_names; an encoder has its own")
    if isinstance(model, Encoder):
        if name is None or name == model.provenance.name:
            return model.eval()
        wrapped = Encoder(model.clip, model.tokenizer, model.image_size, tuple(model.mean.flatten().tolist()),
                          tuple(model.std.flatten().tolist()), replace(model.provenance, name=name))
        return wrapped.to(model.mean.device).eval()
    name = name or type(model).__name__.lower()
    if _is_open_clip(model):
        return _open_clip_encoder(model, name, tokenizer).to(next(model.parameters()).device).eval()
    missing = [a for a in CONTRACT if not hasattr(model, a)]
    if missing:
        raise BenchError(f"model {name} has no {missing[0]}: give an encoder (encode_image, encode_text, tokenizer, "
                         "image_size), an open_clip model, or a classifier images -> logits with class_names=[...]")
    return ContractEncoder(model.eval(), name).eval()
