"""Labelled training images for adversarial fine-tuning: one or more image folders.

The paper recipes fine-tune on ImageNet's train split (an image folder); the tiny zoo on
the tiny world's classification train splits. Several folders keep their own class lists:
a sample is scored only against the classes of its own dataset (the others are masked).

Which images a step sees is a pure function of (seed, step): resuming at step k replays
exactly the batches an uninterrupted run would, with no sampler state to save, and every
DDP rank derives the same global batch and takes its own slice.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from benchutil.errors import BenchError
from tasks.imagefolder import ClassificationData, load_image, read_image_folder


@dataclass(frozen=True)
class LabelledImages:
    datasets: list[ClassificationData]
    rows: list[tuple[int, int]]  # (dataset index, position in that dataset's ids)

    @property
    def offsets(self) -> list[int]:
        """First global class index of each dataset (classes are concatenated)."""
        out, total = [], 0
        for d in self.datasets:
            out.append(total)
            total += len(d.classnames)
        return out

    def identity(self) -> str:
        """sha256 of every dataset's image names, byte sizes, class names and templates.

        Cheap (a stat per image, no decoding) and location-free, so a run resumes on a node
        that mounts the data elsewhere but not on other data.
        """
        digest = hashlib.sha256()
        for d in self.datasets:
            sizes = [(d.root / i).stat().st_size for i in d.ids]
            digest.update(json.dumps([d.ids, sizes, d.classnames, d.templates]).encode())
        return digest.hexdigest()

    def describe(self) -> str:
        return " + ".join(f"{d.name} ({sum(1 for r in self.rows if r[0] == i)} images)"
                          for i, d in enumerate(self.datasets))


def read_training_images(folders: list[tuple[str, Path]]) -> LabelledImages:
    datasets = [read_image_folder(root, name, user_folder=True) for name, root in folders]  # --data: the user's own
    rows = [(i, j) for i, d in enumerate(datasets) for j in range(len(d.ids))]
    return LabelledImages(datasets, rows)


class ImageRows(Dataset):
    """(image in [0,1], global class, dataset index) for a row of LabelledImages."""

    def __init__(self, data: LabelledImages, size: int) -> None:
        self.data, self.size, self.offsets = data, size, data.offsets

    def __len__(self) -> int:
        return len(self.data.rows)

    def __getitem__(self, row: int) -> tuple[Tensor, int, int]:
        d, j = self.data.rows[row]
        dataset = self.data.datasets[d]
        return load_image(dataset.root / dataset.ids[j], self.size), self.offsets[d] + dataset.labels[j], d


def split_holdout(n: int, holdout: int, seed: int) -> tuple[Tensor, Tensor]:
    """(training rows, held-out rows): a seeded subset kept out of training for monitoring."""
    if holdout >= n:
        raise BenchError(f"--holdout {holdout} leaves no training images (the data has {n}); lower it")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7919))
    return perm[holdout:].sort().values, perm[:holdout].sort().values


class StepBatches:
    """The rows of global batch `step`: epochs of seeded permutations, last partial batch dropped."""

    def __init__(self, rows: Tensor, batch_size: int, seed: int) -> None:
        if len(rows) < batch_size:
            raise BenchError(f"--batch-size {batch_size} is larger than the {len(rows)} training images; lower it")
        self.rows, self.batch_size, self.seed = rows, batch_size, seed
        self.per_epoch = len(rows) // batch_size
        self._epoch, self._perm = -1, rows

    def __call__(self, step: int) -> Tensor:
        epoch, position = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._epoch, self._perm = epoch, self.rows[torch.randperm(len(self.rows), generator=generator)]
        return self._perm[position * self.batch_size:(position + 1) * self.batch_size]


class RankSampler:
    """Batch sampler for a DataLoader: this rank's slice of each global batch, from `start`."""

    def __init__(self, batches: StepBatches, start: int, stop: int, rank: int, world: int) -> None:
        if batches.batch_size % world:
            raise BenchError(f"--batch-size {batches.batch_size} does not split over {world} processes; "
                             f"use a multiple of {world}")
        self.batches, self.start, self.stop, self.rank, self.world = batches, start, stop, rank, world

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self):
        local = self.batches.batch_size // self.world
        for step in range(self.start, self.stop):
            yield self.batches(step)[self.rank * local:(self.rank + 1) * local].tolist()
