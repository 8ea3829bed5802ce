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

Under ΔCLIP's sample order (`--sample-order dvd`) every dataset, ImageNet included, is read from
its webdataset copy only, as ΔCLIP's CLIP_benchmark reads the datasets of its
benchmark/webdatasets.txt; the datasets of that list which RobustVLM's table lacks are
registered here too (DVD_DATASETS: webdataset copies only, no other layout).
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
from tasks.clip_benchmark_order import DEFAULT_SAMPLE_ORDER, SampleOrder, not_a_webdataset, sample_order
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
    # Read from its webdataset copy only (ΔCLIP's datasets: no torchvision or image-folder layout here).
    webdataset_only: bool = False
    # The CLIP_benchmark name of the webdataset read instead under a sample order other than the
    # default (imagenet1k: ΔCLIP's wds/imagenet1k, not RobustBench's list).
    order_benchmark_name: str | None = None

    def read(self, name: str, data_root: Path, order: str = DEFAULT_SAMPLE_ORDER) -> (
            ClassificationData | WebDatasetSelection | TorchvisionSelection | RobustBenchImageNet):
        """The dataset's samples as `order` (a SAMPLE_ORDERS name) picks them; an order other than the
        default picks from CLIP_benchmark webdatasets only, and anything else refuses it."""
        if order != DEFAULT_SAMPLE_ORDER:
            return self._read_webdataset(name, data_root, sample_order(order))
        copy = None if self.benchmark_name is None else wds_folder(data_root, self.benchmark_name)
        if copy is not None and (self.webdataset_only or copy.is_dir()):
            return self._read_webdataset(name, data_root, sample_order(order))
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

    def _read_webdataset(self, name: str, data_root: Path, order: SampleOrder) -> WebDatasetSelection:
        benchmark_name = self.benchmark_name if order.name == DEFAULT_SAMPLE_ORDER else (
            self.order_benchmark_name or self.benchmark_name)
        if benchmark_name is None:
            raise not_a_webdataset(order.name, name)
        folder = wds_folder(data_root, benchmark_name)
        if not folder.is_dir():
            layouts = "" if order.name == DEFAULT_SAMPLE_ORDER else (
                f" (--sample-order {order.name} reads webdataset copies only)")
            raise BenchError(f"data for {name!r} missing: no {folder}{layouts}; "
                             f"{fetch_hint(benchmark_name, data_root)}")
        return WebDatasetSelection(name, benchmark_name, folder, order=order)


DATASETS: Registry[DatasetSpec] = Registry("task")
DATASETS.add("imagenet1k", DatasetSpec("imagenet/val", builtin_names="imagenet", order_benchmark_name="imagenet1k"),
             "ImageNet-1k validation (50k images in val/<wnid>/; RobustBench's 5000 in its order), OpenAI's "
             "1000 names + 80 templates; under --sample-order dvd: <root>/wds_imagenet1k/ (its webdataset)",
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

# ΔCLIP's zero-shot datasets (its CLIP_benchmark/benchmark/webdatasets.txt, without "wds/") that
# RobustVLM's table lacks, read from their webdataset copies only. Its voc2007_multilabel is left
# out: a multilabel set (.npy label vectors), which CLIP_benchmark scores by mAP and AutoAttack
# cannot attack (it needs one label per image).
DVD_DATASETS = {
    "imagenetv2": "ImageNet-V2", "imagenet-a": "ImageNet-A", "imagenet-o": "ImageNet-O", "objectnet": "ObjectNet",
    "fer2013": "FER-2013", "voc2007": "PASCAL VOC 2007 (single label)", "sun397": "SUN397", "mnist": "MNIST",
    "gtsrb": "GTSRB", "country211": "Country211", "renderedsst2": "Rendered SST-2",
    "vtab/clevr_count_all": "VTAB CLEVR count", "vtab/clevr_closest_object_distance": "VTAB CLEVR distance",
    "vtab/diabetic_retinopathy": "VTAB Diabetic Retinopathy", "vtab/dmlab": "VTAB DMLab",
    "vtab/dsprites_label_orientation": "VTAB dSprites orientation",
    "vtab/dsprites_label_x_position": "VTAB dSprites x position",
    "vtab/dsprites_label_y_position": "VTAB dSprites y position",
    "vtab/kitti_closest_vehicle_distance": "VTAB KITTI distance", "vtab/resisc45": "VTAB RESISC45",
    "vtab/smallnorb_label_azimuth": "VTAB smallNORB azimuth",
    "vtab/smallnorb_label_elevation": "VTAB smallNORB elevation",
    "vtab/svhn": "VTAB SVHN",
}
for _benchmark, _about in DVD_DATASETS.items():
    _copy = wds_folder(Path("."), _benchmark).name
    DATASETS.add(_benchmark, DatasetSpec(_copy, benchmark_name=_benchmark, webdataset_only=True),
                 f"{_about} test, CLIP_benchmark zero-shot set of ΔCLIP's list: <root>/{_copy}/ (its webdataset only)")
# ΔCLIP's list in its order (CLIP_benchmark/benchmark/webdatasets.txt), voc2007_multilabel left out.
DVD_ZERO_SHOT = (
    "imagenet1k", "imagenetv2", "imagenet_sketch", "imagenet-a", "imagenet-r", "imagenet-o", "objectnet", "fer2013",
    "voc2007", "sun397", "cars", "fgvc_aircraft", "mnist", "stl10", "gtsrb", "country211", "renderedsst2",
    "vtab/caltech101", "vtab/cifar10", "vtab/cifar100", "vtab/clevr_count_all", "vtab/clevr_closest_object_distance",
    "vtab/diabetic_retinopathy", "vtab/dmlab", "vtab/dsprites_label_orientation", "vtab/dsprites_label_x_position",
    "vtab/dsprites_label_y_position", "vtab/dtd", "vtab/eurosat", "vtab/kitti_closest_vehicle_distance",
    "vtab/flowers", "vtab/pets", "vtab/pcam", "vtab/resisc45", "vtab/smallnorb_label_azimuth",
    "vtab/smallnorb_label_elevation", "vtab/svhn",
)
