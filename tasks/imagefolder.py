"""Image-folder classification data: root/<class>/<image>, with class names and templates files.

    root/classnames.txt   one human-readable name per line, in sorted class-folder order
                          (optional: folder names with '_' as spaces otherwise)
    root/templates.txt    one prompt per line with {} for the class name (optional)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from benchutil.errors import BenchError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}
DEFAULT_TEMPLATES = ("a photo of a {}.",)


@dataclass(frozen=True)
class ClassificationData:
    name: str
    root: Path
    ids: list[str]  # image paths relative to root: the stable sample ids
    labels: list[int]
    classnames: list[str]
    templates: list[str] = field(default_factory=lambda: list(DEFAULT_TEMPLATES))


def read_lines(path: Path, what: str) -> list[str]:
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise BenchError(f"cannot read {what} file {path}: {type(err).__name__}; check the file") from None
    return [line for line in lines if line]


def read_image_folder(root: Path, name: str, classnames: list[str] | None = None,
                      templates: list[str] | None = None, require_files: bool = False) -> ClassificationData:
    """require_files: classnames.txt and templates.txt must exist (a paper dataset never falls back
    to folder names and the default template: its numbers would not be the papers')."""
    if not root.is_dir():
        raise BenchError(f"data folder {root} for {name!r} does not exist; set --data-root or BENCH_DATA")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))  # not .ipynb_*
    if not class_dirs:
        raise BenchError(f"data folder {root} for {name!r} has no class sub-folders (expected root/<class>/<image>)")
    for needed in ("classnames.txt", "templates.txt") if require_files else ():
        if not (root / needed).is_file() and (classnames if needed == "classnames.txt" else templates) is None:
            raise BenchError(f"{root / needed} is missing: {name}'s class names and templates must be CLIP_benchmark's "
                             "(its en_classnames.json / en_zeroshot_classification_templates.json, or the torchvision "
                             "dataset's classes), one per line, class names in sorted folder order")
    if classnames is None:
        names_file = root / "classnames.txt"
        classnames = (read_lines(names_file, "class names") if names_file.is_file()
                      else [d.name.replace("_", " ") for d in class_dirs])
    if len(classnames) != len(class_dirs):
        raise BenchError(f"{root}: {len(classnames)} class names for {len(class_dirs)} class folders; "
                         "classnames.txt needs one line per folder, in sorted folder order")
    if templates is None:
        templates_file = root / "templates.txt"
        templates = read_lines(templates_file, "templates") if templates_file.is_file() else list(DEFAULT_TEMPLATES)
    bad = [t for t in templates if "{}" not in t]
    if bad:
        raise BenchError(f"template {bad[0]!r} for {name!r} has no {{}} for the class name")
    ids, labels = [], []
    for label, d in enumerate(class_dirs):
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                ids.append(f.relative_to(root).as_posix())
                labels.append(label)
    if not ids:
        raise BenchError(f"data folder {root} for {name!r} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return ClassificationData(name, root, ids, labels, list(classnames), list(templates))


def load_image(path: Path, size: int | None, pad_colour: tuple[int, int, int] | None = None) -> Tensor:
    """RGB in [0,1], shorter side resized to `size` (bicubic), centre-cropped: CLIP's preprocessing.
    size None: the image as stored (its native resolution).

    pad_colour: first pad the image to a square of this colour, centred (LLaVA-1.5's
    `image_aspect_ratio = "pad"`, llava/mm_utils.py expand2square), so nothing is cropped.
    """
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if pad_colour is not None and im.size[0] != im.size[1]:
                side = max(im.size)
                square = Image.new("RGB", (side, side), pad_colour)
                square.paste(im, ((side - im.size[0]) // 2, (side - im.size[1]) // 2))
                im = square
            if size is not None:
                w, h = im.size
                scale = size / min(w, h)
                im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
                w, h = im.size
                left, top = (w - size) // 2, (h - size) // 2
                im = im.crop((left, top, left + size, top + size))
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise BenchError(f"cannot read image {path}: {type(err).__name__}; the file is missing or corrupt") from None
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def check_images(paths: list[Path]) -> None:
    """Open every image's header (no decoding): a missing, corrupt or oversized file is named
    before a run starts, not after some of its batches."""
    for path in paths:
        try:
            with Image.open(path) as im:
                im.size  # noqa: B018 (the header is parsed on open)
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
            raise BenchError(f"cannot read image {path}: {type(err).__name__}; the file is missing or corrupt"
                             ) from None


def load_batch(root: Path, ids: list[str], size: int | None) -> Tensor:
    images = [load_image(root / i, size) for i in ids]
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) > 1:  # only at native resolution: every image must have the dataset's size
        raise BenchError(f"images of {root} differ in size ({', '.join(map(str, sorted(shapes)))}); a dataset read "
                         "at its native resolution needs one size")
    return torch.stack(images)
