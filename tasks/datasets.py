"""Zero-shot classification datasets the papers average over, with the files they expect.

Each lives under DATA_ROOT/<folder> as an image folder (tasks/imagefolder.py). ImageNet
uses the 1000 class names and 80 OpenAI templates built into open_clip; the others need
classnames.txt and templates.txt in their folder (CLIP_benchmark's, one per line).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchutil.registry import Registry
from tasks.imagefolder import ClassificationData, read_image_folder


@dataclass(frozen=True)
class DatasetSpec:
    folder: str  # relative to the data root
    builtin_names: str | None = None  # "imagenet": names/templates from open_clip
    # Attacked at the dataset's own resolution and resized to the encoder's inside the model,
    # as CLIP_benchmark's cli.py and RobustVLM do for CIFAR-10/100 and STL-10: the eps ball
    # is then in the dataset's pixels.
    native_resolution: bool = False

    def read(self, name: str, data_root: Path) -> ClassificationData:
        root = data_root / self.folder
        if self.builtin_names == "imagenet":
            import open_clip

            templates = [t("{}") for t in open_clip.OPENAI_IMAGENET_TEMPLATES]
            return read_image_folder(root, name, list(open_clip.IMAGENET_CLASSNAMES), templates)
        return read_image_folder(root, name, require_files=True)


DATASETS: Registry[DatasetSpec] = Registry("task")
DATASETS.add("imagenet", DatasetSpec("imagenet/val", builtin_names="imagenet"),
             "ImageNet-1k validation (50k images in val/<wnid>/), OpenAI's 1000 names + 80 templates")
for _name, _what in (
    ("cifar10", "CIFAR-10 test"), ("cifar100", "CIFAR-100 test"), ("stl10", "STL-10 test"),
    ("caltech101", "Caltech-101"), ("cars", "Stanford Cars test"), ("fgvc_aircraft", "FGVC Aircraft test"),
    ("flowers", "Oxford Flowers-102 test"), ("pets", "Oxford-IIIT Pets test"), ("dtd", "DTD test"),
    ("eurosat", "EuroSAT"), ("pcam", "PatchCamelyon test"), ("imagenet-r", "ImageNet-R"),
    ("imagenet_sketch", "ImageNet-Sketch"),
):
    DATASETS.add(_name, DatasetSpec(f"{_name}/test", native_resolution=_name in ("cifar10", "cifar100", "stl10")),
                 f"{_what}, CLIP_benchmark zero-shot set: <root>/{_name}/test/<class>/ + classnames.txt, templates.txt")
