"""CLIP_benchmark's zero-shot datasets: its webdataset copies read as the papers read them (the
package's builder, then cli.py's seeded shuffle), its names, class names and templates."""
from __future__ import annotations

import io
import random
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.suites import get_suite, load_task
from benchutil.errors import BenchError
from tasks.clip_benchmark import package_classnames, package_templates

CLASSES = ["airplane", "automobile", "bird"]


def make_wds(folder: Path, n: int = 30, shards: int = 2) -> None:
    """A webdataset copy in CLIP_benchmark's layout (test/{0..k}.tar + nshards.txt, classnames.txt,
    zeroshot_classification_templates.txt), samples as .webp / .png + .cls like the hub's."""
    rng = np.random.default_rng(0)
    (folder / "test").mkdir(parents=True)
    per = -(-n // shards)
    for s in range(shards):
        with tarfile.open(folder / "test" / f"{s}.tar", "w") as tar:
            for k in range(s * per, min(n, (s + 1) * per)):
                image = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
                buf = io.BytesIO()
                image.save(buf, format="PNG" if k % 2 else "WEBP", lossless=True)
                for name, data in ((f"s{k:05d}.{'png' if k % 2 else 'webp'}", buf.getvalue()),
                                   (f"s{k:05d}.cls", str(k % 3).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    (folder / "test" / "nshards.txt").write_text(f"{shards}\n")
    (folder / "classnames.txt").write_text("\n".join(CLASSES) + "\n")
    (folder / "zeroshot_classification_templates.txt").write_text("a photo of a {c}.\na blurry photo of a {c}.\n")


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    make_wds(tmp_path / "data" / "wds_vtab-cifar10")
    return tmp_path / "data"


def reference_samples(folder: Path, n: int):
    """RobustVLM's CLIP_benchmark cli.py: build_dataset("wds/...") then the seeded shuffle, first n."""
    from clip_benchmark.datasets.builder import build_dataset

    ds = build_dataset("wds/vtab/cifar10", root=str(folder), split="test", download=False)
    ds = ds.shuffle(10000, initial=10000, rng=random.Random(0))
    out = []
    for image, label in ds:
        if len(out) == n:
            break
        out.append((np.asarray(image.convert("RGB")), int(label)))
    return out, ds.classes, ds.templates


@pytest.mark.filterwarnings("ignore:WebDataset")  # the reference's own call below
def test_the_papers_samples_class_names_and_templates(data_root):
    task = load_task(get_suite("paper"), "cifar10", str(data_root))  # today's name is an alias
    assert task.name == "vtab/cifar10"
    ids = task.sample_ids(12, seed=5)  # the reference's selection, whatever --seed
    assert ids == task.sample_ids(12, seed=0)
    expected, classes, templates = reference_samples(data_root / "wds_vtab-cifar10", 12)
    assert task.data.classnames == classes == CLASSES
    assert task.data.templates == [t.replace("{c}", "{}") for t in templates] == ["a photo of a {}.",
                                                                                   "a blurry photo of a {}."]
    for sample_id, (pixels, label) in zip(ids, expected):
        assert np.array_equal(np.asarray(Image.open(task.data.root / sample_id)), pixels)  # lossless
        assert task._label[sample_id] == label
    labels = [label for _, label in expected]
    assert labels != sorted(labels)  # the stream was shuffled


def test_a_larger_selection_extends_the_smaller_one(data_root):
    task = load_task(get_suite("paper"), "vtab/cifar10", str(data_root))
    first = task.sample_ids(5, 0)
    pixels = [np.asarray(Image.open(task.data.root / i)) for i in first]
    more = task.sample_ids(20, 0)
    assert more[:5] == first and len(more) == 20
    assert all(np.array_equal(np.asarray(Image.open(task.data.root / i)), p) for i, p in zip(first, pixels))
    assert len(task.sample_ids(None, 0)) == 30  # everything the stream has


def test_the_package_supplies_templates_and_the_class_names_it_ships(tmp_path):
    assert package_templates("vtab/pets")[0] == "a photo of a {}, a type of pet."
    assert len(package_classnames("vtab/eurosat")) == 10 and package_classnames("vtab/cifar10") is None
    root = tmp_path / "eurosat" / "test"
    for k, name in enumerate(package_classnames("vtab/eurosat")):
        (root / f"{k:02d}").mkdir(parents=True)
        Image.new("RGB", (8, 8), (k, k, k)).save(root / f"{k:02d}" / "a.png")
    task = load_task(get_suite("paper"), "eurosat", str(tmp_path))
    assert task.name == "vtab/eurosat"
    assert task.data.classnames == package_classnames("vtab/eurosat")
    assert task.data.templates == package_templates("vtab/eurosat")


def test_missing_class_names_or_data_name_the_files_and_the_fetch(tmp_path):
    (tmp_path / "cifar10" / "test" / "cat").mkdir(parents=True)
    with pytest.raises(BenchError, match=r"classnames.txt is missing.*git clone https://huggingface.co/datasets/"
                                         r"clip-benchmark/wds_vtab-cifar10"):
        load_task(get_suite("paper"), "cifar10", str(tmp_path))
    with pytest.raises(BenchError, match="neither .*wds_vtab-pets nor .*pets/test"):
        load_task(get_suite("paper"), "pets", str(tmp_path))
    (tmp_path / "wds_stl10").mkdir()
    with pytest.raises(BenchError, match="nshards.txt is missing"):
        load_task(get_suite("paper"), "stl10", str(tmp_path))


def test_torchvisions_own_layout_is_read_by_the_clip_benchmark_builder(tmp_path, monkeypatch):
    """DTD as torchvision stores it (dtd/dtd/images/<class>/, dtd/dtd/labels/test1.txt): class
    names from torchvision, templates from the package, --seed choosing the samples."""
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    base = tmp_path / "data" / "dtd" / "dtd" / "dtd"
    lines = []
    for c, texture in enumerate(["banded", "dotted", "zigzagged"]):
        (base / "images" / texture).mkdir(parents=True)
        for k in range(4):
            Image.new("RGB", (20 + k, 16), (60 * c, 10 * k, 0)).save(base / "images" / texture / f"{texture}_{k}.jpg")
            lines.append(f"{texture}/{texture}_{k}.jpg")
    (base / "labels").mkdir()
    (base / "labels" / "test1.txt").write_text("\n".join(lines) + "\n")
    task = load_task(get_suite("paper"), "dtd", str(tmp_path / "data"))
    assert task.name == "vtab/dtd" and task.settings["selection"] == "torchvision"
    ids = task.sample_ids(5, seed=0)
    assert task.data.classnames == ["banded", "dotted", "zigzagged"]
    assert task.data.templates == package_templates("dtd")
    assert ids != task.sample_ids(5, seed=1) and len(set(ids)) == 5
    task.sample_ids(5, seed=0)
    for sample_id in ids:  # each stored sample is torchvision's image, label for label
        k = int(sample_id.split(".")[0])
        texture = lines[k].split("/")[0]
        assert task._label[sample_id] == ["banded", "dotted", "zigzagged"].index(texture)
        with Image.open(base / "images" / lines[k]) as original:
            assert np.array_equal(np.asarray(Image.open(task.data.root / sample_id)),
                                  np.asarray(original.convert("RGB")))
    (base / "labels" / "test1.txt").unlink()
    with pytest.raises(BenchError, match="not a readable torchvision 'dtd' dataset.*wds_vtab-dtd"):
        load_task(get_suite("paper"), "dtd", str(tmp_path / "data"))
