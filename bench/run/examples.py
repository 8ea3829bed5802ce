"""`bench run --save-examples K`: the first K samples of a run kept as pictures (clean,
adversarial, and the perturbation amplified to the full range) for the website's run pages."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor

from benchutil.fileio import atomic_write

EXAMPLES = "examples"  # the run folder's sub-folder


def _png(path: Path, image: Tensor) -> None:
    array = (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    atomic_write(path, lambda p: Image.fromarray(array).save(p, format="PNG"))


class ExampleWriter:
    """Writes NNN_clean.png, NNN_adv.png and NNN_delta.png for the samples it is given, NNN
    being the sample's place in the run (so resumed runs and shards name them alike)."""

    def __init__(self, run: Path, ids: list[str], eps: float) -> None:
        self.folder, self.eps = run / EXAMPLES, eps
        self.place = {sample_id: k for k, sample_id in enumerate(ids)}

    def __call__(self, sample_id: str, x: Tensor, x_adv: Tensor) -> None:
        if sample_id not in self.place:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self.folder / f"{self.place[sample_id]:03d}"
        _png(stem.with_name(stem.name + "_clean.png"), x)
        _png(stem.with_name(stem.name + "_adv.png"), x_adv)
        # the perturbation scaled so that +-eps spans black..white (grey: unperturbed)
        scale = 2 * self.eps if self.eps > 0 else 1.0
        _png(stem.with_name(stem.name + "_delta.png"), (x_adv - x) / scale + 0.5)
