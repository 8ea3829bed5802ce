"""Labelled training images for adversarial fine-tuning: one or more image folders.

The paper recipes fine-tune on ImageNet's train split (an image folder); the tiny zoo on
the tiny world's classification train splits. Several folders keep their own class lists:
a sample is scored only against the classes of its own dataset (the others are masked).

Class names and templates (TeCoA's loss and every method's held-out monitor use them): a
folder's classnames.txt / templates.txt when present. Without classnames.txt, a folder whose
class folders are exactly ImageNet-1k's 1000 wnids gets OpenAI's ImageNet names (open_clip's
IMAGENET_CLASSNAMES, the list RobustVLM's IMAGENET_1K_CLASS_ID_TO_LABEL holds, in sorted-wnid
order); any other folder is refused. Without templates.txt, RobustVLM's single template
"This is a photo of a {}" (adversarial_training_clip.py, --template std).

Images are read as RobustVLM reads them (tasks/imagefolder.py load_image): RGB, then torchvision's
Resize(size, bicubic) and CenterCrop(size), pixel for pixel, then [0, 1].

Which images a step sees is a pure function of (seed, step): resuming at step k replays
exactly the batches an uninterrupted run would, with no sampler state to save, and every
DDP rank derives the same global batch and takes its own slice.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from benchutil.errors import BenchError
from tasks.imagefolder import ClassificationData, load_image, read_image_folder

ROBUSTVLM_TEMPLATE = "This is a photo of a {}"  # RobustVLM's --template std: no full stop
# sha256 of the 1000 ImageNet-1k wnids, sorted, joined by newlines (tests check it against
# clip_benchmark's list): a folder is ImageNet-1k's when its class folders hash to it.
IMAGENET_WNIDS_SHA256 = "385e0240499426c022b773be1ae4da780f057b89c9694c7f47199f62746b6edd"
NAMES_FROM_FILE = "classnames.txt"
NAMES_FROM_OPENCLIP = "open_clip IMAGENET_CLASSNAMES (OpenAI's ImageNet names; RobustVLM's)"


@dataclass(frozen=True)
class LabelledImages:
    datasets: list[ClassificationData]
    rows: list[tuple[int, int]]  # (dataset index, position in that dataset's ids)
    names_from: list[str] = field(default_factory=list)  # per dataset: where its class names came from

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

    def provenance(self) -> dict[str, dict[str, object]]:
        """Per dataset, for the card: where its class names came from and its templates."""
        return {d.name: {"class_names": source, "templates": d.templates}
                for d, source in zip(self.datasets, self.names_from)}


def is_imagenet_1k(class_folders: list[str]) -> bool:
    """Whether sorted class-folder names are exactly ImageNet-1k's 1000 wnids."""
    return (len(class_folders) == 1000
            and hashlib.sha256("\n".join(class_folders).encode()).hexdigest() == IMAGENET_WNIDS_SHA256)


def _training_folder(name: str, root: Path) -> tuple[ClassificationData, str]:
    """One --data folder with its class names and templates (module docstring), and their source."""
    if not root.is_dir():  # read_image_folder names the problem
        return read_image_folder(root, name, user_folder=True), NAMES_FROM_FILE
    templates = None if (root / "templates.txt").is_file() else [ROBUSTVLM_TEMPLATE]
    if (root / "classnames.txt").is_file():
        return read_image_folder(root, name, templates=templates, user_folder=True), NAMES_FROM_FILE
    folders = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not is_imagenet_1k(folders):
        raise BenchError(f"{root / 'classnames.txt'} is missing: training data needs one class name per class "
                         "folder, in sorted folder order (only ImageNet-1k's 1000 wnid folders get OpenAI's names "
                         "without it)")
    import open_clip

    return (read_image_folder(root, name, list(open_clip.IMAGENET_CLASSNAMES), templates, user_folder=True),
            NAMES_FROM_OPENCLIP)


def read_training_images(folders: list[tuple[str, Path]]) -> LabelledImages:
    read = [_training_folder(name, root) for name, root in folders]  # --data: the user's own
    datasets = [d for d, _ in read]
    rows = [(i, j) for i, d in enumerate(datasets) for j in range(len(d.ids))]
    return LabelledImages(datasets, rows, [source for _, source in read])


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
