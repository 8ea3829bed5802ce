"""Karpathy-style caption files (COCO, Flickr30k, the tiny world): images[] with filepath,
filename, split and sentences[].raw."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchutil.errors import BenchError
from tasks.jsonfiles import field, read_json


@dataclass(frozen=True)
class CaptionItem:
    id: str  # cocoid when present, else the file stem (Flickr30k)
    image: Path
    references: list[str]  # what CIDEr scores against
    # What the untargeted passes attack, when not the references: RobustVLM attacks the Karpathy
    # file's sentences[k].raw (eval_datasets.py CaptionDataset) and scores COCO against the COCO API.
    attacked: list[str] | None = None


def read_karpathy(path: Path, image_root: Path, split: str) -> list[CaptionItem]:
    data = read_json(path, "captions")
    images = field(data, "images", list, path, "the file")
    items = []
    for i, im in enumerate(images):
        where = f"images[{i}]"
        if field(im, "split", str, path, where) not in (split, "restval" if split == "train" else split):
            continue
        filename = field(im, "filename", str, path, where)
        sentences = field(im, "sentences", list, path, where)
        refs = [field(s, "raw", str, path, f"{where}.sentences[{k}]") for k, s in enumerate(sentences)]
        if not refs:
            raise BenchError(f"{path}: {where} ({filename}) has no reference captions")
        ident = str(im["cocoid"]) if "cocoid" in im else Path(filename).stem
        items.append(CaptionItem(ident, image_root / im.get("filepath", "") / filename, refs))
    if not items:
        raise BenchError(f"{path} has no images in split {split!r}")
    return items
