"""Training data of the tiny world: caption images in memory, captions tokenised once."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor


@dataclass(frozen=True)
class CaptionData:
    images: Tensor  # uint8 [N, 3, H, W]
    captions: list[list[str]]  # 5 references per image


def decode_images(paths: list[Path]) -> Tensor:
    """uint8 [N, 3, H, W] of same-size RGB files, held in memory for a whole training run."""
    arrays = []
    for path in paths:
        with Image.open(path) as f:
            arrays.append(np.asarray(f.convert("RGB"), dtype=np.uint8))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def read_caption_split(world: Path, split: str) -> CaptionData:
    """The Karpathy-style captions file of the tiny world, one split, images decoded."""
    root = world / "captions"
    meta = json.loads((root / "dataset_tiny.json").read_text())
    items = [im for im in meta["images"] if im["split"] == split]
    images = decode_images([root / im["filepath"] / im["filename"] for im in items])
    return CaptionData(images, [[s["raw"] for s in im["sentences"]] for im in items])


class EpochSampler:
    """Batches of distinct images, an epoch at a time, from a generator whose state resumes."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator) -> None:
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self._order: Tensor = torch.empty(0, dtype=torch.long)

    def next(self) -> Tensor:
        if self._order.numel() < self.batch_size:
            self._order = torch.randperm(self.n, generator=self.generator)
        batch, self._order = self._order[: self.batch_size], self._order[self.batch_size :]
        return batch

    def state(self) -> dict[str, Tensor]:
        return {"order": self._order.clone()}

    def load(self, state: dict[str, Tensor]) -> None:
        self._order = state["order"].clone()
