"""Image-folder classification data: root/<class>/<image>, with class names and templates files.

    root/classnames.txt   one human-readable name per line, in sorted class-folder order
                          (optional: folder names with '_' as spaces otherwise)
    root/templates.txt    one prompt per line with {} for the class name (optional)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from string import Formatter

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


def numbered_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """(line number, text) of the non-blank lines of a UTF-8 text file (a BOM is dropped)."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise BenchError(f"cannot read {what} file {path}: {type(err).__name__}; check the file") from None
    return [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]


def read_lines(path: Path, what: str) -> list[str]:
    return [line for _, line in numbered_lines(path, what)]


def template_problem(template: str) -> str | None:
    """Why template.format(name) would fail or ignore the name; None for a good template.

    A template holds exactly one '{}' (literal braces are written '{{' and '}}'): '{1}', '{x}'
    or a lone brace raise at class-weight time, and a template without '{}' gives every class
    the same prompt."""
    try:
        fields = [(name, conversion, spec) for _, name, spec, conversion in Formatter().parse(template)
                  if name is not None]
    except ValueError as err:  # a lone '{' or '}'
        return f"is not valid format syntax ({err})"
    if len(fields) != 1:
        return "has no {} for the class name" if not fields else f"has {len(fields)} placeholders"
    name, conversion, spec = fields[0]
    if name or conversion or spec:
        shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        return f"uses {shown} where {{}} is needed"
    return None


TEMPLATE_FIX = "write one {} where the class name goes, e.g. 'a photo of a {}.' (a literal brace is {{ or }})"


def check_templates(templates: list[tuple[int, str]], source: str) -> list[str]:
    """The templates of (line number, text) pairs, or one line naming the first bad one."""
    if not templates:
        raise BenchError(f"{source} has no templates; give one prompt per line with {{}} for the class name")
    for number, template in templates:
        problem = template_problem(template)
        if problem is not None:
            raise BenchError(f"{source} line {number}: template {template!r} {problem}; {TEMPLATE_FIX}")
    return [template for _, template in templates]


def check_distinct(names: list[str], source: str, items: str) -> None:
    """Two classes with one name get one text embedding: they can never be told apart."""
    first: dict[str, int] = {}
    for k, name in enumerate(names):
        if name in first:
            raise BenchError(f"{source} names class {name!r} twice ({items} {first[name] + 1} and {k + 1}): two "
                             "classes with one name can never be told apart; give each class its own name")
        first[name] = k


def _class_names(root: Path, class_dirs: list[Path], distinct: bool) -> list[str]:
    """classnames.txt, else the folder names with '_' as spaces."""
    names_file = root / "classnames.txt"
    if not names_file.is_file():
        names = [d.name.replace("_", " ") for d in class_dirs]
        if distinct:
            check_distinct(names, f"{root}: the class folders ('_' read as a space)", "folders")
        return names
    names = read_lines(names_file, "class names")
    if not names:
        raise BenchError(f"{names_file} is empty; write one class name per line, in sorted class-folder order")
    if distinct:
        check_distinct(names, str(names_file), "non-blank lines")
    return names


def _templates(root: Path) -> list[tuple[int, str]]:
    templates_file = root / "templates.txt"
    if not templates_file.is_file():
        return list(enumerate(DEFAULT_TEMPLATES, 1))
    return numbered_lines(templates_file, "templates")


def read_image_folder(root: Path, name: str, classnames: list[str] | None = None,
                      templates: list[str] | None = None, require_files: bool = False,
                      user_folder: bool = False) -> ClassificationData:
    """require_files: classnames.txt and templates.txt must exist (a paper dataset never falls back
    to folder names and the default template: its numbers would not be the papers').

    user_folder: a folder the user assembled (folder:PATH): its class names must be distinct and
    every class folder must hold an image. Not for the paper datasets: OpenAI's ImageNet names,
    which their copies repeat, name 'missile' and 'sunglasses' twice, and the papers keep them."""
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
        classnames = _class_names(root, class_dirs, user_folder)
    if len(classnames) != len(class_dirs):
        raise BenchError(f"{root}: {len(classnames)} class names for {len(class_dirs)} class folders; "
                         "classnames.txt needs one line per folder, in sorted folder order")
    checked = (check_templates(_templates(root), str(root / "templates.txt")) if templates is None
               else check_templates(list(enumerate(templates, 1)), f"the templates of {name!r}"))
    ids, labels = [], []
    for label, d in enumerate(class_dirs):
        images = [f for f in sorted(d.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES
                  and not f.name.startswith(".")]  # not macOS's ._x.png resource forks
        if user_folder and not images:
            raise BenchError(f"class folder {d} has no images ({', '.join(sorted(IMAGE_SUFFIXES))}); add some or "
                             "remove the folder (and its line of classnames.txt)")
        ids += [f.relative_to(root).as_posix() for f in images]
        labels += [label] * len(images)
    if not ids:
        raise BenchError(f"data folder {root} for {name!r} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return ClassificationData(name, root, ids, labels, list(classnames), checked)


def resize_and_crop(im: Image.Image, size: int) -> Image.Image:
    """torchvision's Resize(size, bicubic) then CenterCrop(size), pixel for pixel: open_clip's eval
    transform, which the papers apply (RobustVLM's CLIP_eval/clip_robustbench.py and CLIP_benchmark's
    cli.py use the model's transform without its Normalize). torchvision truncates the longer side
    (int(size * long / short)) and rounds the crop offset (round((side - size) / 2)); rounding the
    one and flooring the other moves most non-square images by a pixel."""
    w, h = im.size
    long_side = int(size * max(w, h) / min(w, h))
    new_w, new_h = (size, long_side) if w <= h else (long_side, size)
    if (new_w, new_h) != (w, h):
        im = im.resize((new_w, new_h), Image.BICUBIC)
    left, top = int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))
    return im.crop((left, top, left + size, top + size))


def load_image(path: Path, size: int | None, pad_colour: tuple[int, int, int] | None = None) -> Tensor:
    """RGB in [0,1], shorter side resized to `size` (bicubic), centre-cropped: CLIP's preprocessing
    (resize_and_crop). size None: the image as stored (its native resolution).

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
                im = resize_and_crop(im, size)
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
