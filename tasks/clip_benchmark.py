"""CLIP_benchmark's zero-shot datasets as the papers read them: its webdataset copies, its
names, class names and templates (the clip_benchmark package).

RobustVLM evaluates zero-shot robustness with its copy of CLIP_benchmark's `cli.py` on the
webdataset versions (CLIP_benchmark/bash/run_benchmark_adv.sh: `--dataset_root
https://huggingface.co/datasets/clip-benchmark/wds_{dataset_cleaned}`, `--batch_size 50`, the
datasets of CLIP_benchmark/benchmark/datasets.txt); ΔCLIP with its own fork. Which samples those
read, in which order: tasks/clip_benchmark_order.py.

A local copy of such a repository (`git clone https://huggingface.co/datasets/clip-benchmark/
wds_vtab-cifar10 DATA_ROOT/wds_vtab-cifar10`) gives its class names and templates through the
package's own builder (`clip_benchmark.datasets.builder.build_dataset("wds/...")`). The order is
replayed on sample positions (webdataset's shuffle draws depend only on how many samples its
buffer holds, not on what they are), so only the selected samples are decoded, with the
builder's decoder, and they are stored once as lossless PNGs under the cache: every run, shard
and worker reads the same pixels by file name, and a selection is stored under its own batch size.
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import random
import shutil
import tarfile
import tempfile
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

from benchutil.errors import BenchError
from benchutil.fileio import atomic_write, atomic_write_text, disk_errors, is_disk_full
from benchutil.paths import bench_home
from tasks.clip_benchmark_order import (
    DEFAULT_SAMPLE_ORDER,
    REFERENCE_WORKERS,
    SAMPLE_ORDERS,
    SHUFFLE_SEED,
    SampleOrder,
    read_order,
    reference_order,
)
from tasks.imagefolder import ClassificationData, check_templates, numbered_lines, read_lines

# builder.py build_wds_dataset: `.decode(ImageHandler("pil", extensions=[...]))`, then
# `.to_tuple([...], "cls")` (the first of these present is the image)
BUILDER_IMAGE_EXTENSIONS = ["webp", "png", "jpg", "jpeg"]


# Our dataset name -> CLIP_benchmark's (RobustVLM's CLIP_benchmark/benchmark/datasets.txt, without "wds/").
PAPER_DATASETS = {
    "cifar10": "vtab/cifar10", "stl10": "stl10", "cifar100": "vtab/cifar100", "cars": "cars",
    "caltech101": "vtab/caltech101", "pets": "vtab/pets", "flowers": "vtab/flowers", "dtd": "vtab/dtd",
    "eurosat": "vtab/eurosat", "fgvc_aircraft": "fgvc_aircraft", "pcam": "vtab/pcam", "imagenet-r": "imagenet-r",
    "imagenet_sketch": "imagenet_sketch",
}


def wds_folder(data_root: Path, benchmark_name: str) -> Path:
    """Where a clone of clip-benchmark/wds_<name with '/' -> '-'> lives under the data root."""
    return data_root / f"wds_{benchmark_name.replace('/', '-')}"


def fetch_hint(benchmark_name: str, data_root: Path) -> str:
    repo = wds_folder(Path("."), benchmark_name).name
    return f"git clone https://huggingface.co/datasets/clip-benchmark/{repo} {data_root / repo}"


def package_templates(benchmark_name: str) -> list[str]:
    """The package's English templates for a dataset, looked up as its builder does."""
    return positional(_lookup(_package_json("en_zeroshot_classification_templates.json"), benchmark_name,
                              "imagenet1k"))


def positional(templates: list[str]) -> list[str]:
    """CLIP_benchmark writes templates with {c} (zeroshot_classification.py: template.format(c=name));
    ours take the name as {}."""
    return [t.replace("{c}", "{}") for t in templates]


def package_classnames(benchmark_name: str) -> list[str] | None:
    """The package's English class names, where it ships them (not for torchvision's own sets)."""
    return _lookup(_package_json("en_classnames.json"), benchmark_name, None)


def _package_json(filename: str) -> dict[str, Any]:
    try:
        from clip_benchmark import datasets
    except ImportError:
        raise BenchError("the clip_benchmark package is missing: pip install clip_benchmark") from None
    return json.loads((Path(datasets.__file__).parent / filename).read_text(encoding="utf-8"))


def _lookup(table: dict[str, Any], name: str, fallback: str | None) -> Any:
    """builder.py value_from_first_key_found: wds/<name>, then <name> without its prefix, then the fallback."""
    keys = [f"wds/{name}", name, name.split("/", 1)[-1], *([fallback] if fallback else [])]
    return next((table[k] for k in keys if k in table), None)


CACHE_HINT = "free space, or set BENCH_HOME to a folder on a larger disk"
LFS_POINTER = b"version https://git-lfs"  # what `git clone` without git-lfs leaves instead of a shard
READ_ERRORS = (OSError, ValueError, KeyError, tarfile.TarError)  # a corrupt shard or sample


class WebDatasetSelection:
    """The first n samples cli.py evaluates from a CLIP_benchmark webdataset's test split (its
    4-worker order, in batches of the sample order's size), as PNG files."""

    kind = "clip_benchmark-wds"  # recorded in a run's task_settings

    def __init__(self, name: str, benchmark_name: str, folder: Path, cache: Path | None = None,
                 order: SampleOrder = SAMPLE_ORDERS[DEFAULT_SAMPLE_ORDER]) -> None:
        self.name, self.benchmark_name, self.folder, self.order = name, benchmark_name, folder, order
        # the read order is in the name, so a cache of another order is never taken for this one
        self.cache = cache or bench_home() / "clip_benchmark" / (
            f"{folder.name}-seed{SHUFFLE_SEED}-workers{REFERENCE_WORKERS}-batch{order.batch_size}")
        for needed in ("test/nshards.txt", "classnames.txt", "zeroshot_classification_templates.txt"):
            if not (folder / needed).is_file():
                raise BenchError(f"{folder / needed} is missing: {folder} is not a CLIP_benchmark webdataset "
                                 f"copy; {fetch_hint(benchmark_name, folder.parent)}")
        self.nshards = self._check_files()

    def _check_files(self) -> int:
        """What the builder reads, checked first: it raises bare ValueErrors or reads garbage.
        Returns the number of shards."""
        nshards_file = self.folder / "test" / "nshards.txt"
        text = " ".join(read_lines(nshards_file, "shard count"))
        if not text.isdigit() or int(text) < 1:
            raise BenchError(f"{nshards_file} must hold the number of shards (a positive integer), not {text[:20]!r}; "
                             f"re-fetch the dataset: {fetch_hint(self.benchmark_name, self.folder.parent)}")
        for k in range(int(text)):
            shard = self._shard(k)
            if not shard.is_file():
                raise BenchError(f"{shard} is missing ({nshards_file} says {text} shards); "
                                 f"re-fetch the dataset: {fetch_hint(self.benchmark_name, self.folder.parent)}")
            with open(shard, "rb") as f:
                if f.read(len(LFS_POINTER)) == LFS_POINTER:
                    raise BenchError(f"{shard} is a git-lfs pointer, not the shard: run `git lfs pull` in "
                                     f"{self.folder}")
        self._check_type()
        self._builder_lines(self.folder / "classnames.txt", "class names")
        templates_file = self.folder / "zeroshot_classification_templates.txt"
        templates = self._builder_lines(templates_file, "templates")
        check_templates([(number, positional([t])[0]) for number, t in templates], str(templates_file))
        return int(text)

    def _check_type(self) -> None:
        """The builder reads dataset_type.txt (classification when absent): a multilabel set
        (voc2007_multilabel: .npy label vectors, scored by mAP) or a retrieval set has no single
        label for an accuracy task, nor for AutoAttack to attack."""
        type_file = self.folder / "dataset_type.txt"
        kind = " ".join(read_lines(type_file, "dataset type")).strip().lower() if type_file.is_file() else ""
        if kind not in ("", "classification"):
            raise BenchError(f"{self.folder} is a {kind} webdataset ({type_file}); zero-shot accuracy under attack "
                             "needs one class per image: use a classification copy")

    def _shard(self, k: int) -> Path:
        return self.folder / "test" / f"{k}.tar"  # the builder's test/{0..nshards-1}.tar

    def _builder_lines(self, path: Path, what: str) -> list[tuple[int, str]]:
        """(line number, text) of a file the builder reads line by line; it keeps a blank line as a
        class (shifting every later label) or as an empty prompt, so one is refused, as is no line."""
        numbered = numbered_lines(path, what)
        if not numbered:
            raise BenchError(f"{path} is empty; re-fetch the dataset: "
                             f"{fetch_hint(self.benchmark_name, self.folder.parent)}")
        if len(numbered) != len(path.read_text(encoding="utf-8-sig").splitlines()):
            blank = next(k for k, (number, _) in enumerate([*numbered, (0, "")], 1) if number != k)
            raise BenchError(f"{path} line {blank} is blank; one entry per line, no blank lines")
        return numbered

    def data(self, n: int, seed: int) -> ClassificationData:
        """The selection's first n samples (made, or extended, on first use); the reference's
        shuffle has its own seed, so `seed` (--seed) plays no part."""
        selection = _stored_selection(self.cache / "selection.json", self.folder, read_order(self.order.batch_size))
        if selection is None or (len(selection["labels"]) < n and not selection["complete"]):
            selection = self._select(n)
        labels = selection["labels"][:n]
        ids = [f"{k:06d}.png" for k in range(len(labels))]
        return ClassificationData(self.name, self.cache, ids, labels, selection["classnames"], selection["templates"])

    def _select(self, n: int) -> dict[str, Any]:
        from clip_benchmark.datasets.builder import build_dataset

        with warnings.catch_warnings():
            # webdataset asks for an explicit shardshuffle; the builder leaves it unset (no shard
            # shuffle), which is what the reference ran
            warnings.filterwarnings("ignore", message=r"WebDataset\(shardshuffle=")
            stream = build_dataset(f"wds/{self.benchmark_name}", root=str(self.folder), split="test",
                                   download=False)
        classnames, templates = list(stream.classes), positional(list(stream.templates))
        order = reference_order(self._shard_sizes(), n, self.order.batch_size)
        with disk_errors(self.cache.parent, CACHE_HINT):
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(dir=self.cache.parent, prefix=f".{self.cache.name}."))
            try:
                labels = self._store_samples(order, len(classnames), work)
                selection = {"source": str(self.folder), "benchmark_name": self.benchmark_name, "labels": labels,
                             "complete": len(labels) < n, "classnames": classnames, "templates": templates,
                             "order": read_order(self.order.batch_size)}
                (work / "selection.json").write_text(json.dumps(selection))
                if self.cache.exists():
                    shutil.rmtree(self.cache)  # ours: a smaller selection, replaced by its extension
                work.replace(self.cache)
            except BaseException:
                shutil.rmtree(work, ignore_errors=True)
                raise
        return selection

    def _read_error(self, err: Exception) -> BenchError:
        return BenchError(f"cannot read the webdataset {self.folder} ({type(err).__name__}: {str(err)[:80]}); "
                          f"re-fetch it: {fetch_hint(self.benchmark_name, self.folder.parent)}")

    def _raw_samples(self, k: int) -> Generator[dict[str, Any], None, None]:
        """Shard k's samples undecoded, its files grouped into samples by webdataset's own tar reader
        (the builder's WebDataset reads a shard the same way)."""
        import webdataset

        return webdataset.tarfile_to_samples()(iter([{"url": str(self._shard(k))}]))

    def _shard_sizes(self) -> list[int]:
        """How many samples each shard holds (each shard read once, nothing decoded)."""
        sizes = []
        for k in range(self.nshards):
            try:
                with contextlib.closing(self._raw_samples(k)) as samples:
                    sizes.append(sum(1 for _ in samples))
            except READ_ERRORS as err:
                if is_disk_full(err):
                    raise
                raise self._read_error(err) from None
        return sizes

    def _chosen(self, order: list[tuple[int, int]]) -> Iterator[tuple[int, Any, int]]:
        """(rank in the selection, image, label) of each selected sample, shard by shard; a shard is
        read up to its last selected sample, and only selected samples are decoded."""
        wanted: dict[int, dict[int, int]] = {}
        for rank, (shard, k) in enumerate(order):
            wanted.setdefault(shard, {})[k] = rank
        for shard in sorted(wanted):
            ranks, last = wanted[shard], max(wanted[shard])
            with contextlib.closing(self._raw_samples(shard)) as samples:
                for k, raw in enumerate(samples):
                    if k in ranks:
                        yield (ranks[k], *_decode(raw))
                    if k == last:
                        break

    def _store_samples(self, order: list[tuple[int, int]], n_classes: int, work: Path) -> list[int]:
        """The selected samples as PNGs in work, named by their rank; their labels, each a class of
        classnames.txt."""
        labels: dict[int, int] = {}
        samples = self._chosen(order)
        while True:
            try:
                rank, image, label = next(samples)
            except StopIteration:
                break
            except READ_ERRORS as err:
                if is_disk_full(err):
                    raise
                raise self._read_error(err) from None
            if not 0 <= label < n_classes:
                raise BenchError(f"{self.folder}: sample {rank} of the selection has label {label}, but "
                                 f"classnames.txt names {n_classes} classes; re-fetch the dataset")
            image.convert("RGB").save(work / f"{rank:06d}.png")
            labels[rank] = label
        if len(labels) != len(order):  # a shard holds fewer samples than it did a moment ago
            raise BenchError(f"{self.folder} changed while its samples were being selected; run again once "
                             "it is complete")
        return [labels[rank] for rank in range(len(order))]


@functools.cache
def _builder_decoder() -> Any:
    """The builder's decoder (builder.py build_wds_dataset: `.decode(ImageHandler("pil", extensions=...))`),
    made once for every sample of a selection."""
    import webdataset

    return webdataset.autodecode.Decoder(
        [webdataset.autodecode.ImageHandler("pil", extensions=BUILDER_IMAGE_EXTENSIONS)])


def _decode(raw: dict[str, Any]) -> tuple[Any, int]:
    """(PIL image, label) of one undecoded sample, as the builder's stream yields it (its decoder,
    then `.to_tuple([...], "cls")`)."""
    import webdataset

    image, label = next(iter(webdataset.to_tuple(BUILDER_IMAGE_EXTENSIONS, "cls")(iter([_builder_decoder()(raw)]))))
    return image, int(label)


def _stored_selection(manifest: Path, folder: Path, order: dict[str, int]) -> dict[str, Any] | None:
    """The cached selection of `folder`, or None when there is none, it is unreadable, it was
    made from another copy (the cache is named by the copy's folder name only) or in another
    order (read_order): it is made again."""
    try:
        selection = json.loads(manifest.read_text())
    except (OSError, ValueError):  # absent, truncated or not UTF-8
        return None
    keys = {"labels": list, "complete": bool, "classnames": list, "templates": list}
    if not isinstance(selection, dict) or not all(isinstance(selection.get(k), t) for k, t in keys.items()):
        return None
    return selection if selection.get("source") == str(folder) and selection.get("order") == order else None


class TorchvisionSelection:
    """A dataset in torchvision's own layout, read by the clip_benchmark builder (its class
    names and templates); n samples of a --seed shuffle of the test split, stored as PNGs.

    The papers' fork of CLIP_benchmark only selects samples from webdatasets (cli.py calls
    `dataset.shuffle`, which torchvision datasets lack), so there is no reference order here.
    """

    kind = "torchvision"  # recorded in a run's task_settings

    def __init__(self, name: str, builder_name: str, root: Path, cache: Path | None = None) -> None:
        from clip_benchmark.datasets.builder import build_dataset

        self.name, self.builder_name, self.root = name, builder_name, root
        self.cache_base = cache or bench_home() / "clip_benchmark"
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "split argument ignored" for datasets without splits
                self.dataset = build_dataset(builder_name, root=str(root), split="test", download=False)
        except (RuntimeError, OSError, AssertionError, ValueError) as err:
            raise BenchError(f"{root} is not a readable torchvision {builder_name!r} dataset ({err}); "
                             f"use CLIP_benchmark's copy instead: {fetch_hint(name, root.parent)}") from None
        self.classnames = list(self.dataset.classes)
        self.templates = positional(list(self.dataset.templates))

    def data(self, n: int, seed: int) -> ClassificationData:
        order = list(range(len(self.dataset)))
        random.Random(seed).shuffle(order)
        chosen = order[:n]
        cache = self.cache_base / f"torchvision-{self.builder_name}-{_digest(self.root)}"
        with disk_errors(cache, CACHE_HINT):
            cache.mkdir(parents=True, exist_ok=True)
            manifest = cache / "labels.json"  # index -> label of every stored sample: stored ones are not decoded again
            stored = _stored_labels(manifest)
            missing = [k for k in chosen if k not in stored or not (cache / f"{k:06d}.png").is_file()]
            for k in missing:
                image, label = self.dataset[k]
                atomic_write(cache / f"{k:06d}.png", lambda p, image=image: image.convert("RGB").save(p, format="PNG"),
                             CACHE_HINT)
                stored[k] = int(label)
            if missing:
                atomic_write_text(manifest, json.dumps({str(k): v for k, v in sorted(stored.items())}), CACHE_HINT)
        labels = [stored[k] for k in chosen]
        return ClassificationData(self.name, cache, [f"{k:06d}.png" for k in chosen], labels, self.classnames,
                                  self.templates)


def _stored_labels(manifest: Path) -> dict[int, int]:
    """The cache's index -> label map; an unreadable one is empty (its samples are stored again)."""
    try:
        stored = json.loads(manifest.read_text())
        return {int(k): int(v) for k, v in stored.items()}
    except (OSError, ValueError, AttributeError, TypeError):  # absent, corrupt, or not a {index: label} object
        return {}


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
