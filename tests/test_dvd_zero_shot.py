"""ΔCLIP's zero-shot protocol: its CLIP_benchmark fork's sample order (cli.py's shuffle and 4-worker
DataLoader in batches of 8), its datasets (benchmark/webdatasets.txt), ImageNet from its webdataset,
and the --sample-order flag that picks it, recorded in runs and kept apart in the leaderboard."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from bench.cli.main import main
from bench.report.leaderboard import load_samples, task_column
from bench.suites import expand_tasks, get_suite, load_task
from benchutil.errors import BenchError
from tasks.clip_benchmark_order import SAMPLE_ORDERS, reference_order
from tests import bench_fixtures as fx
from tests.test_clip_benchmark import CLASSES, _no_empty_check, assert_same_samples, make_wds

FOUR_WORKERS = pytest.mark.filterwarnings("ignore:This DataLoader will create 4 worker processes")
DVD_BATCH = 8  # dvd_clip_h14_hf_adv.sh: BATCH_SIZE=8


def fork_samples(folder: Path, benchmark_name: str, n: int, batch_size: int, monkeypatch: pytest.MonkeyPatch):
    """The first n samples a CLIP_benchmark fork's cli.py evaluates with --batch_size batch_size, read
    as ΔCLIP's reads them: the builder, `shuffle(10000, initial=10000, rng=random.Random(0))`,
    `DataLoader(dataset.batched(bs), batch_size=None, shuffle=False, num_workers=4)`, and
    zeroshot_classification.py's loop (stop once `i >= n // bs + 2`, concatenate, keep the first n).
    ToTensor stands in for the model's transform: the pixels name the samples. Returns (pixels, label)."""
    import webdataset.compat
    from clip_benchmark.datasets.builder import build_dataset
    from torchvision.transforms import ToTensor

    monkeypatch.setattr(webdataset.compat, "check_empty", _no_empty_check)  # as in test_clip_benchmark
    ds = build_dataset(f"wds/{benchmark_name}", root=str(folder), split="test", download=False, transform=ToTensor())
    ds = ds.shuffle(10000, initial=10000, rng=random.Random(0))
    loader = torch.utils.data.DataLoader(ds.batched(batch_size), batch_size=None, shuffle=False, num_workers=4,
                                         multiprocessing_context="fork")
    images, labels = [], []
    for i, (x, y) in enumerate(loader):
        images.append(x)
        labels.append(torch.as_tensor(y))
        if i >= n // batch_size + 2:
            break
    pixels = (torch.cat(images)[:n] * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return list(zip(pixels, torch.cat(labels)[:n].tolist()))


def pixels_of(task, ids: list[str]) -> list[np.ndarray]:
    return [np.asarray(Image.open(task.data.root / i)) for i in ids]


def test_the_two_orders_are_the_two_forks_batch_sizes():
    assert SAMPLE_ORDERS["robustvlm"].batch_size == 50 and SAMPLE_ORDERS["dvd"].batch_size == DVD_BATCH
    # one shard: one worker reads everything, whatever the batches; more: the workers' batches interleave
    assert reference_order([130], 117, DVD_BATCH) == reference_order([130], 117, 50)
    dvd, robustvlm = reference_order([70, 95], 61, DVD_BATCH), reference_order([70, 95], 61, 50)
    assert set(dvd) != set(robustvlm) and len(dvd) == len(robustvlm) == 61
    assert [shard for shard, _ in dvd[:16]] == [0] * 8 + [1] * 8  # batches of 8 from each worker in turn


SHARDINGS = [([70, 95], 61), ([60, 20, 75], 123), ([40, 65, 12, 50, 33], 149)]


@pytest.mark.filterwarnings("ignore:WebDataset")
@FOUR_WORKERS
@pytest.mark.parametrize(("sizes", "n"), SHARDINGS, ids=[f"{len(s)}-shards" for s, _ in SHARDINGS])
def test_the_dvd_order_is_the_forks_loader_with_batches_of_8(tmp_path, monkeypatch, sizes, n):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    folder = tmp_path / "data" / "wds_vtab-cifar10"
    make_wds(folder, sizes=sizes, side=6)
    dvd = load_task(get_suite("paper"), "cifar10", str(tmp_path / "data"), "dvd")
    ids = dvd.sample_ids(n, seed=0)
    assert_same_samples(dvd, ids, fork_samples(folder, "vtab/cifar10", n, DVD_BATCH, monkeypatch))
    robustvlm = load_task(get_suite("paper"), "cifar10", str(tmp_path / "data"))
    other = pixels_of(robustvlm, robustvlm.sample_ids(n, seed=0))
    assert any(not np.array_equal(a, b) for a, b in zip(pixels_of(dvd, ids), other))  # another selection


def test_a_dvd_selection_never_reuses_a_robustvlm_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    make_wds(tmp_path / "data" / "wds_vtab-cifar10", sizes=[20, 25], side=6)
    paper, data = get_suite("paper"), str(tmp_path / "data")
    robustvlm, dvd = load_task(paper, "cifar10", data), load_task(paper, "cifar10", data, "dvd")
    robustvlm_pixels = pixels_of(robustvlm, robustvlm.sample_ids(30, 0))
    assert dvd.selection.cache != robustvlm.selection.cache and dvd.selection.cache.name.endswith("-batch8")
    # a robustvlm selection under the dvd cache's name (copied, or left by another version) is made again
    shutil.copytree(robustvlm.selection.cache, dvd.selection.cache)
    dvd_pixels = pixels_of(dvd, dvd.sample_ids(30, 0))
    assert json.loads((dvd.selection.cache / "selection.json").read_text())["order"]["batch_size"] == DVD_BATCH
    assert any(not np.array_equal(a, b) for a, b in zip(dvd_pixels, robustvlm_pixels))
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "fresh"))  # the same selection, made from nothing
    fresh = load_task(paper, "cifar10", data, "dvd")
    assert all(np.array_equal(a, b) for a, b in zip(pixels_of(fresh, fresh.sample_ids(30, 0)), dvd_pixels))
    # and the robustvlm cache was left as it was
    assert all(np.array_equal(a, b) for a, b in zip(pixels_of(robustvlm, robustvlm.sample_ids(30, 0)),
                                                    robustvlm_pixels))


@pytest.mark.filterwarnings("ignore:WebDataset")
@FOUR_WORKERS
def test_imagenet_under_dvd_is_its_webdatasets_1000_shuffled_samples(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    paper, data = get_suite("paper"), tmp_path / "data"
    with pytest.raises(BenchError, match="no .*wds_imagenet1k .*git clone https://huggingface.co/datasets/"
                                         "clip-benchmark/wds_imagenet1k"):
        load_task(paper, "imagenet", str(data), "dvd")
    make_wds(data / "wds_imagenet1k", sizes=[30, 27, 41], side=6)
    task = load_task(paper, "imagenet", str(data), "dvd")
    assert task.name == "imagenet1k" and task.settings["selection"] == "clip_benchmark-wds"
    assert task.settings["sample_order"] == "dvd"
    ids = task.sample_ids(77, seed=3)
    assert task.data.classnames == CLASSES  # the copy's classnames.txt, as the builder reads it
    assert_same_samples(task, ids, fork_samples(data / "wds_imagenet1k", "imagenet1k", 77, DVD_BATCH, monkeypatch))
    assert paper.default_samples("imagenet", order="dvd") == 1000 and paper.default_samples("imagenet") == 5000
    # the default order still reads RobustBench's list, never the webdataset
    with pytest.raises(BenchError, match="imagenet/val"):
        load_task(paper, "imagenet", str(data))


def test_cifar_under_dvd_is_attacked_at_the_encoders_resolution(tmp_path, monkeypatch):
    """ΔCLIP's cli.py has RobustVLM's native-resolution branch for CIFAR-10/100 and STL-10 commented out."""
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    make_wds(tmp_path / "data" / "wds_vtab-cifar10", n=10)
    paper, data = get_suite("paper"), str(tmp_path / "data")
    assert load_task(paper, "cifar10", data).native_resolution
    dvd = load_task(paper, "cifar10", data, "dvd")
    assert not dvd.native_resolution and "native_resolution" not in dvd.settings


def test_the_group_is_dvds_list_without_the_multilabel_set():
    paper = get_suite("paper")
    names = expand_tasks(paper, ["dvd-zero-shot"])
    assert len(names) == 37 and names[0] == "imagenet1k" and names[-1] == "vtab/svhn"
    assert "voc2007_multilabel" not in paper.datasets
    for name in names:
        spec = paper.datasets.get(name).value
        assert spec.benchmark_name == name or (name == "imagenet1k" and spec.order_benchmark_name == name)
    assert expand_tasks(paper, ["dvd-zero-shot", "vtab/svhn", "coco"])[-1] == "coco"  # no name twice
    from bench.cli.listing import rows

    listed = {name: about for name, _, about in rows("tasks", "paper")}
    assert listed["dvd-zero-shot"] == f"group of 37 tasks: {', '.join(names)}"


def test_a_multilabel_copy_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    folder = tmp_path / "data" / "wds_voc2007"
    make_wds(folder, n=6)
    (folder / "dataset_type.txt").write_text("multilabel\n")
    with pytest.raises(BenchError, match="multilabel webdataset"):
        load_task(get_suite("paper"), "voc2007", str(tmp_path / "data"), "dvd")


@pytest.mark.parametrize("argv", [
    ["--suite", "tiny", "--task", "tiny-shape"],
    ["--suite", "paper", "--task", "coco", "--encoder", "clip"],
    ["--suite", "paper", "--task", "folder:{data}", "--encoder", "clip"],
    ["--suite", "paper", "--task", "cifar10", "--encoder", "clip"],  # an image folder, not the webdataset
], ids=["tiny", "vlm", "folder", "image-folder"])
def test_dvd_is_refused_where_no_webdataset_is_read(tmp_path, capsys, argv):
    fx.make_image_folder(tmp_path / "cifar10" / "test")
    argv = [a.replace("{data}", str(tmp_path / "cifar10" / "test")) for a in argv]
    assert main(["run", *argv, "--data-root", str(tmp_path), "--sample-order", "dvd", "--out",
                 str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--sample-order dvd" in err and "webdataset" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.filterwarnings("ignore:WebDataset")
def test_a_new_dataset_end_to_end_and_its_leaderboard_cells(tmp_path, monkeypatch):
    """objectnet (ΔCLIP's list, not RobustVLM's) through `bench run --suite paper`, in both orders:
    each run records its order, and the leaderboard keeps them in two columns."""
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    data, runs = tmp_path / "data", tmp_path / "runs"
    make_wds(data / "wds_objectnet", sizes=[9, 7], side=24)
    checkpoint = fx.save_full_safetensors(fx.random_model(seed=0), tmp_path / "m.safetensors")
    common = ["run", "--suite", "paper", "--data-root", str(data), "--encoder", str(checkpoint), "--task",
              "objectnet", "--attack", "aa", "--eps", "4/255", "--steps", "2", "--n-samples", "10", "--batch-size",
              "8", "--out", str(runs)]
    assert main([*common, "--sample-order", "dvd"]) == 0
    assert main(common) == 0
    configs = {c["task_settings"].get("sample_order"): c
               for c in (json.loads(p.read_text()) for p in runs.rglob("config.json"))}
    assert set(configs) == {"dvd", None}  # the default order is left unrecorded: earlier runs keep their keys
    assert configs["dvd"]["task_settings"] == {"member_args": {"apgd-ce": {"restarts": 5}},
                                               "selection": "clip_benchmark-wds", "sample_order": "dvd"}
    dvd = load_task(get_suite("paper"), "objectnet", str(data), "dvd")
    dvd.sample_ids(10, 0)
    stored = {sample_id: np.asarray(Image.open(dvd.data.root / sample_id)) for sample_id in dvd.data.ids}
    assert configs["dvd"]["sample_ids"] == dvd.data.ids and len(stored) == 10
    assert task_column(configs["dvd"]) == "objectnet (dvd)" and task_column(configs[None]) == "objectnet"
    samples = load_samples(runs)
    assert sorted(samples["task"].unique()) == ["objectnet", "objectnet (dvd)"]
    assert len(samples) == 20


def test_imagenet_of_either_order_stays_outside_the_zero_shot_average():
    """The leaderboard's average leaves ImageNet out (as the FARE table does), in ΔCLIP's order too."""
    from bench.report.leaderboard import accuracy_table

    rows = []
    for task, right in (("vtab/cifar10 (dvd)", 6), ("objectnet (dvd)", 2), ("imagenet1k (dvd)", 10)):
        rows += [{"task": task, "encoder": "delta-clip-h14-336", "threat": "clean", "eps": 0.0, "id": f"s{k}",
                  "metric": "accuracy %", "clean": 100.0 * (k < right), "adv": 100.0 * (k < right)}
                 for k in range(10)]
    table = accuracy_table(pd.DataFrame(rows))
    assert table.at["delta-clip-h14-336", "avg clean"] == 40.0  # (60 + 20) / 2, ImageNet's 100 outside
