"""The model contracts: every member the runner and the tasks use of an encoder and of a VLM.

open_clip encoders (bench.encoders.Encoder), tiny-llava / LLaVA (bench.vlm.projected) and
OpenFlamingo (bench.vlm.flamingo) implement them; a new model family implements the same
members in one file and registers its loader there (bench.vlm.VLMS, bench.encoders).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from torch import Tensor, nn


class Provenance(Protocol):
    name: str  # what the user asked for ("clip", a path)
    architecture: str
    source: str
    sha256: str  # of the weight file(s): the run identity


class Encoder(Protocol):
    """Images in [0,1] at image_size -> embeddings; normalisation inside (eps in pixel units)."""

    provenance: Provenance
    image_size: int
    tokenizer: Callable[[list[str]], Tensor]
    mean: Tensor  # [1, 3, 1, 1]: the pixel normalisation applied inside
    std: Tensor

    @property
    def visual(self) -> nn.Module: ...  # the open_clip vision tower (VLMs read its tokens)
    def encode_image(self, x: Tensor, normalize: bool = True) -> Tensor: ...
    def encode_text(self, tokens: Tensor, normalize: bool = True) -> Tensor: ...
    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...


class Prompts(Protocol):
    caption: str
    question: str  # with {question}
    caption_tokens: int
    answer_tokens: int
    demonstrations: int  # text-only demonstrations before a zero-shot query (OpenFlamingo: 2)
    caption_demonstration: str  # with {caption}
    question_demonstration: str  # with {question}, {answer}
    beams: int  # 1 = greedy
    caption_length_penalty: float
    answer_length_penalty: float


class VLM(Protocol):
    """A vision-language model around an Encoder: pixels in, text out, batched."""

    name: str
    sha256: str  # of its own weights (the encoder's are in encoder.provenance)
    image_size: int
    encoder: Any  # an Encoder
    prompts: Prompts
    codec: Any  # .check(text, what): refuses a string the VLM cannot write
    pad_colour: tuple[int, int, int] | None  # pad images to a square of this colour before resizing (LLaVA)

    def generate(self, images: Tensor, prompts: list[str], max_new_tokens: int,
                 length_penalty: float = 0.0) -> list[str]: ...
    def with_encoder(self, encoder: Any) -> VLM: ...  # the same language side around another encoder
    def loss(self, images: Tensor, prompts: list[str], targets: list[str]) -> Tensor: ...  # [B], pixel-differentiable
    def target_logits(self, images: Tensor, prompts: list[str], targets: list[str]) -> tuple[Tensor, Tensor]: ...
    def modules(self) -> Iterator[nn.Module]: ...  # attack_mode switches them to eval
    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...
