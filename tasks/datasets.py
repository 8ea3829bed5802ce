"""Zero-shot classification datasets the papers average over, with the files they expect.

Names are CLIP_benchmark's (RobustVLM's CLIP_benchmark/benchmark/datasets.txt without "wds/",
and imagenet1k); the short names (cifar10, pets, imagenet, ...) are aliases. Each dataset is
read from, in this order:

* CLIP_benchmark's webdataset copy, DATA_ROOT/wds_<name with '/' -> '-'> (a clone of
  huggingface.co/datasets/clip-benchmark/wds_...): the papers' exact samples, class names and
  templates (tasks/clip_benchmark.py);
* torchvision's own layout under DATA_ROOT/<short name>/ (e.g. cifar-10-batches-py/, dtd/dtd/),
  read by the clip_benchmark builder (its class names and templates), --seed selecting samples;
* an image folder DATA_ROOT/<short name>/test/<class>/<image> (tasks/imagefolder.py), with
  classnames.txt / templates.txt when present, else the clip_benchmark package's English
  templates and, where it ships them, class names. A dataset whose class names the package
  does not ship (they come from torchvision's dataset files) needs classnames.txt.

ImageNet uses the 1000 class names and 80 OpenAI templates built into open_clip, and its
samples are RobustBench's fixed list of 5000 validation images, in order
(tasks/robustbench_imagenet.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchutil.errors import BenchError
from benchutil.registry import Registry
from tasks.clip_benchmark import (
    PAPER_DATASETS,
    TorchvisionSelection,
    WebDatasetSelection,
    fetch_hint,
    package_classnames,
    package_templates,
    wds_folder,
)
from tasks.imagefolder import ClassificationData, read_image_folder
from tasks.robustbench_imagenet import RobustBenchImageNet


@dataclass(frozen=True)
class DatasetSpec:
    folder: str  # relative to the data root
    builtin_names: str | None = None  # "imagenet": names/templates from open_clip
    # Attacked at the dataset's own resolution and resized to the encoder's inside the model,
    # as CLIP_benchmark's cli.py and RobustVLM do for CIFAR-10/100 and STL-10: the eps ball
    # is then in the dataset's pixels.
    native_resolution: bool = False
    benchmark_name: str | None = None  # CLIP_benchmark's name: its webdataset copy and package files
    torchvision_name: str | None = None  # the CLIP_benchmark builder's name for torchvision's layout

    def read(self, name: str, data_root: Path) -> (ClassificationData | WebDatasetSelection | TorchvisionSelection
                                                   | RobustBenchImageNet):
        if self.benchmark_name is not None and wds_folder(data_root, self.benchmark_name).is_dir():
            return WebDatasetSelection(name, self.benchmark_name, wds_folder(data_root, self.benchmark_name))
        root = data_root / self.folder
        torchvision_root = root.parent  # <short name>/, where torchvision's own layout lives
        if self.torchvision_name is not None and torchvision_root.is_dir() and not root.is_dir():
            return TorchvisionSelection(name, self.torchvision_name, torchvision_root)
        if self.builtin_names == "imagenet":
            import open_clip

            templates = [t("{}") for t in open_clip.OPENAI_IMAGENET_TEMPLATES]
            return RobustBenchImageNet(name, root, list(open_clip.IMAGENET_CLASSNAMES), templates)
        if self.benchmark_name is None:
            return read_image_folder(root, name, require_files=True)
        classnames = None if (root / "classnames.txt").is_file() else package_classnames(self.benchmark_name)
        if classnames is None and not (root / "classnames.txt").is_file() and root.is_dir():
            raise BenchError(f"{root / 'classnames.txt'} is missing: {name}'s class names come from torchvision's "
                             f"dataset files, not the clip_benchmark package; or use the papers' copy: "
                             f"{fetch_hint(self.benchmark_name, data_root)}")
        templates = None if (root / "templates.txt").is_file() else package_templates(self.benchmark_name)
        if not root.is_dir():
            raise BenchError(f"data for {name!r} missing: neither {wds_folder(data_root, self.benchmark_name)} nor "
                             f"{root}; {fetch_hint(self.benchmark_name, data_root)}")
        return read_image_folder(root, name, classnames, templates)


DATASETS: Registry[DatasetSpec] = Registry("task")
DATASETS.add("imagenet1k", DatasetSpec("imagenet/val", builtin_names="imagenet"),
             "ImageNet-1k validation (50k images in val/<wnid>/; RobustBench's 5000 in its order), OpenAI's "
             "1000 names + 80 templates",
             aliases=("imagenet",))
_ABOUT = {
    "cifar10": "CIFAR-10 test", "stl10": "STL-10 test", "cifar100": "CIFAR-100 test", "cars": "Stanford Cars test",
    "caltech101": "Caltech-101", "pets": "Oxford-IIIT Pets test", "flowers": "Oxford Flowers-102 test",
    "dtd": "DTD test", "eurosat": "EuroSAT", "fgvc_aircraft": "FGVC Aircraft test", "pcam": "PatchCamelyon test",
    "imagenet-r": "ImageNet-R", "imagenet_sketch": "ImageNet-Sketch",
}
for _short, _benchmark in PAPER_DATASETS.items():
    DATASETS.add(_benchmark, DatasetSpec(f"{_short}/test", native_resolution=_short in ("cifar10", "cifar100", "stl10"),
                                         benchmark_name=_benchmark, torchvision_name=_short),
                 f"{_ABOUT[_short]}, CLIP_benchmark zero-shot set: <root>/wds_{_benchmark.replace('/', '-')}/ "
                 f"(its webdataset) or <root>/{_short}/test/<class>/",
                 aliases=(_short,) if _short != _benchmark else ())
