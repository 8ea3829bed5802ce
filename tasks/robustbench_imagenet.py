"""ImageNet's evaluation samples as the papers pick them: RobustBench's fixed list of 5000.

RobustVLM's `CLIP_eval/clip_robustbench.py` evaluates ImageNet with
`robustbench.data.load_clean_dataset(BenchmarkDataset.imagenet, n_examples=5000, data_dir=...,
prepr=preprocessor_without_normalize)`. RobustBench's `load_imagenet` (robustbench/data.py)
refuses more than 5000 examples, reads `CustomImageFolder(data_dir + '/val', ...)`
(robustbench/loaders.py) and takes its first n samples in order (a DataLoader without
shuffling). That folder's samples are the lines of `helper_files/imagenet_test_image_ids.txt`
(`make_custom_dataset`), in the file's order, each labelled with the index of its wnid among the
sorted class folders (`CustomDatasetFolder._find_classes`). The list ships here as
tasks/data/robustbench_imagenet_ids.txt (its source and licence: tasks/data/README.md).

`preprocessor_without_normalize` is the model's open_clip transform without its Normalize:
torchvision's Resize(224, bicubic) and CenterCrop(224), not RobustBench's Res256Crop224;
tasks/imagefolder.py load_image does the same.
"""
from __future__ import annotations

import sys
from pathlib import Path

from benchutil.errors import BenchError
from tasks.imagefolder import ClassificationData, check_templates

IDS_FILE = Path(__file__).parent / "data" / "robustbench_imagenet_ids.txt"
LIMIT = 5000  # load_imagenet: "The evaluation is currently possible on at most 5000 points"
ALL = sys.maxsize  # what ZeroShotTask asks for when no sample count is given: the whole list
FOLDER_FIX = "ILSVRC2012's 50000 validation images sorted into one folder per class, val/<wnid>/<file>"


def robustbench_ids() -> list[str]:
    """The list's `<wnid>/<file>` entries, in order (make_custom_dataset drops each line's newline)."""
    return IDS_FILE.read_text(encoding="utf-8").splitlines()


class RobustBenchImageNet:
    """The first n of RobustBench's 5000 ImageNet validation images, read from `root`
    (DATA_ROOT/imagenet/val, one folder per wnid), with the given class names and templates."""

    kind = "robustbench"  # recorded in a run's task_settings

    def __init__(self, name: str, root: Path, classnames: list[str], templates: list[str]) -> None:
        if not root.is_dir():
            raise BenchError(f"data folder {root} for {name!r} does not exist; set --data-root or BENCH_DATA "
                             "(ImageNet goes in DATA_ROOT/imagenet/val/<wnid>/)")
        # A label is the index of the sample's wnid among the sorted class folders, as RobustBench
        # assigns it; with all 1000 folders that is open_clip's class order. (RobustBench would
        # also count hidden folders, shifting every label; we skip them, as read_image_folder does.)
        classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if len(classes) != len(classnames):
            raise BenchError(f"{root} holds {len(classes)} class folders, not ImageNet's {len(classnames)}; it "
                             f"needs {FOLDER_FIX}")
        self.name, self.root = name, root
        self.class_index = {wnid: k for k, wnid in enumerate(classes)}
        self.classnames = classnames
        self.templates = check_templates(list(enumerate(templates, 1)), f"the templates of {name!r}")

    def data(self, n: int, seed: int) -> ClassificationData:
        """The list's first n samples; RobustBench's order is fixed, so `seed` plays no part."""
        if n > LIMIT and n != ALL:
            raise BenchError(f"ImageNet's samples are RobustBench's fixed list of {LIMIT} validation images "
                             f"(RobustVLM's CLIP_eval/clip_robustbench.py), not {n}: pass --n-samples {LIMIT} or fewer")
        ids = robustbench_ids()[:n]
        missing = next((i for i in ids if not (self.root / i).is_file()), None)
        if missing is not None:
            raise BenchError(f"{self.root / missing} is missing, one of the {LIMIT} validation images RobustBench "
                             f"evaluates; the folder needs {FOLDER_FIX}")
        return ClassificationData(self.name, self.root, ids, [self.class_index[i.split("/")[0]] for i in ids],
                                  self.classnames, self.templates)
