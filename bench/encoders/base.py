"""The Encoder: an open_clip model (or a transformers CLIPModel behind open_clip's interface,
bench/encoders/hf_clip.py) in pixel space, with its provenance."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchutil.errors import BenchError


@dataclass(frozen=True)
class Provenance:
    """Where the weights came from, enough to reproduce and to audit a run."""

    name: str  # what the user asked for
    architecture: str  # open_clip model config name
    source: str  # e.g. open_clip:ViT-L-14/openai, hf-hub:chs20/fare4-clip, file:path
    sha256: str  # of the weight file(s) loaded, '+'-joined for base + vision
    quick_gelu: bool
    # sha256 of the downloaded files of url: sources ('+'-joined), whether pinned or not; recorded
    # only where there are such files, so every other record keeps its shape
    file_sha256: str = ""

    def as_dict(self) -> dict[str, object]:
        fields = asdict(self)
        if not self.file_sha256:
            del fields["file_sha256"]
        return fields


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


def check_patch_tokens(encoder: nn.Module, purpose: str) -> None:
    """VLMs read the patch tokens of an open_clip ViT tower (bench.vlm): a ConvNeXt or a
    transformers CLIP tower has none, which is one line here instead of an AttributeError there."""
    visual = getattr(encoder, "visual", None)
    if not (hasattr(visual, "transformer") and hasattr(visual, "forward_intermediates")):
        provenance = getattr(encoder, "provenance", None)
        which = f"{provenance.name} ({provenance.architecture})" if provenance is not None else "this encoder"
        raise BenchError(f"{purpose} reads the patch tokens of an open_clip ViT vision tower, and {which} has "
                         "none; evaluate it on classification or retrieval tasks, or give an open_clip ViT")
