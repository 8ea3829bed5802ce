"""The Encoder: an open_clip model in pixel space, with its provenance."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class Provenance:
    """Where the weights came from, enough to reproduce and to audit a run."""

    name: str  # what the user asked for
    architecture: str  # open_clip model config name
    source: str  # e.g. open_clip:ViT-L-14/openai, hf-hub:chs20/fare4-clip, file:path
    sha256: str  # of the weight file(s) loaded, '+'-joined for base + vision
    quick_gelu: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class Encoder(nn.Module):
    """Images in [0,1] at image_size -> embeddings; CLIP normalisation happens inside.

    Keeping normalisation inside means every attack's eps is in pixel units.
    """

    def __init__(self, clip: nn.Module, tokenizer: Callable[[list[str]], Tensor], image_size: int,
                 mean: tuple[float, ...], std: tuple[float, ...], provenance: Provenance) -> None:
        super().__init__()
        self.clip = clip
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.provenance = provenance
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    @property
    def visual(self) -> nn.Module:
        return self.clip.visual

    def encode_image(self, x: Tensor, normalize: bool = True) -> Tensor:
        emb = self.clip.encode_image((x - self.mean) / self.std)
        return F.normalize(emb, dim=-1) if normalize else emb

    def encode_text(self, tokens: Tensor, normalize: bool = True) -> Tensor:
        emb = self.clip.encode_text(tokens)
        return F.normalize(emb, dim=-1) if normalize else emb

    def forward(self, x: Tensor) -> Tensor:
        return self.encode_image(x)
