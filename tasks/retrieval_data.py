"""Image-text retrieval data: the Karpathy test splits of COCO and Flickr30k as CLIP_benchmark
reads them, and the tiny world's caption split.

CLIP_benchmark (LAION-AI/CLIP_benchmark, clip_benchmark/datasets/builder.py `build_dataset`)
evaluates "mscoco_captions" and "flickr30k" on annotation files that mehdidc/retrieval_annotations
builds from Karpathy's split files:

* mscoco_captions: `coco_test_karpathy.json` is `captions_val2014.json` cut to the images of
  `dataset_coco.json`'s test split (build_coco_splits.py); torchvision's `CocoCaptions` reads it:
  images in ascending COCO id, each with every caption annotation of it, in the file's order
  (5 to 7 per image, 25,010 for the 5000 images). We read the same two files the captioning task
  reads (`coco/dataset_coco.json`, `coco/annotations/captions_val2014.json`) and keep that order.
* flickr30k: `flickr30k_test_karpathy.txt` is the test split's `sentences[].raw`, in the
  Karpathy file's order, written by pandas' `to_csv` (build_flickr30k_splits.py) and read back
  by clip_benchmark/datasets/flickr.py `Flickr`, which cuts each stripped line at ".jpg,"
  without CSV unquoting: a caption that pandas quoted (one holding a comma or a double quote)
  reaches the tokenizer inside its quotes, with inner quotes doubled. We derive that text from
  `flickr30k/dataset_flickr30k.json` (`clip_benchmark_flickr_caption`), so the embeddings are
  those of the reference's strings.

No template: zeroshot_retrieval.py `evaluate` tokenises each caption as it is. The tiny world has
no CLIP_benchmark file: its Karpathy file's raw sentences are the captions, in file order.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchutil.errors import BenchError
from benchutil.registry import Registry
from tasks.captioning import coco_references
from tasks.captions import CaptionItem, read_karpathy


@dataclass(frozen=True)
class RetrievalData:
    """A retrieval split: the gallery images in the reference's order, each with its captions."""

    name: str
    ids: list[str]  # one per image (cocoid, or the file stem for Flickr30k)
    images: list[Path]
    captions: list[list[str]]  # per image, the strings the reference's tokenizer receives
    caption_source: str  # how the captions were read (recorded in every run's task settings)

    def __post_init__(self) -> None:
        if len(set(self.ids)) != len(self.ids):
            duplicate = next(i for i in self.ids if self.ids.count(i) > 1)
            raise BenchError(f"{self.name}: image {duplicate!r} is listed twice in the split; fix its annotation file")
        for image_id, captions in zip(self.ids, self.captions):
            if not captions:  # the readers refuse this first; a hand-built split must too
                raise BenchError(f"{self.name}: image {image_id!r} has no captions; every image of a retrieval "
                                 "split needs at least one")


def clip_benchmark_flickr_caption(filename: str, raw: str) -> str:
    """The caption as CLIP_benchmark's Flickr reader returns it: the row pandas' to_csv writes
    (the csv module, minimal quoting), stripped and cut at its '.jpg,'."""
    if not filename.endswith(".jpg"):
        raise BenchError(f"Flickr30k image {filename!r} is not a .jpg file; CLIP_benchmark's Flickr reader cuts its "
                         "lines at '.jpg,' (use the Karpathy dataset_flickr30k.json)")
    row = io.StringIO()
    csv.writer(row, lineterminator="\n").writerow([filename, raw])
    return row.getvalue().strip().split(".jpg,", 1)[1]


def _from_items(name: str, items: list[CaptionItem], captions: list[list[str]], source: str) -> RetrievalData:
    return RetrievalData(name, [it.id for it in items], [it.image for it in items], captions, source)


def read_karpathy_retrieval(name: str, karpathy: Path, image_root: Path) -> RetrievalData:
    """A Karpathy file's test split, its raw sentences as the captions (the tiny world)."""
    items = read_karpathy(karpathy, image_root, "test")
    return _from_items(name, items, [list(it.references) for it in items], "karpathy-raw")


def read_coco_retrieval(name: str, root: Path) -> RetrievalData:
    """mscoco_captions: the Karpathy test images in ascending id, their captions_val2014.json captions."""
    items = read_karpathy(root / "coco" / "dataset_coco.json", root / "coco", "test")
    not_numbered = [it.id for it in items if not it.id.isdigit()]
    if not_numbered:
        raise BenchError(f"{root / 'coco' / 'dataset_coco.json'}: image {not_numbered[0]!r} has no numeric 'cocoid'; "
                         "use Karpathy's dataset_coco.json")
    items = sorted(items, key=lambda it: int(it.id))  # CocoCaptions: sorted(coco.imgs.keys())
    captions = coco_references(root / "coco" / "annotations" / "captions_val2014.json", [it.id for it in items])
    return _from_items(name, items, [captions[it.id] for it in items], "coco-annotations")


def read_flickr30k_retrieval(name: str, root: Path) -> RetrievalData:
    """flickr30k: the Karpathy test split in file order, each raw sentence as CLIP_benchmark's file gives it."""
    base = root / "flickr30k"
    items = read_karpathy(base / "dataset_flickr30k.json", base / "flickr30k-images", "test")
    captions = [[clip_benchmark_flickr_caption(it.image.name, raw) for raw in it.references] for it in items]
    return _from_items(name, items, captions, "clip-benchmark-flickr-csv")


@dataclass(frozen=True)
class RetrievalSpec:
    read: Callable[[str, Path], RetrievalData]  # (name, data root) -> the split


RETRIEVAL_DATASETS: Registry[RetrievalSpec] = Registry("task")
RETRIEVAL_DATASETS.add("coco-retrieval", RetrievalSpec(read_coco_retrieval),
                       "COCO Karpathy test split (5000 images, 25,010 captions from captions_val2014.json), "
                       "CLIP_benchmark's mscoco_captions; image-to-text R@1")
RETRIEVAL_DATASETS.add("flickr30k-retrieval", RetrievalSpec(read_flickr30k_retrieval),
                       "Flickr30k Karpathy test split (1000 images, 5000 captions), CLIP_benchmark's flickr30k; "
                       "image-to-text R@1")
