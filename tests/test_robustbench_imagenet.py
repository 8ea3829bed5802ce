"""The paper suite's ImageNet samples are RobustBench's (RobustVLM's CLIP_eval/clip_robustbench.py
reads them with robustbench.data.load_clean_dataset): its fixed list of 5000, in order, labelled
by sorted class folder, preprocessed by the model's open_clip transform without Normalize.

robustbench is installed without its dependencies (scripts/setup.sh), so robustbench.data (which
imports timm, geotorch and the model zoo through the package's __init__) does not import; its
loader, robustbench/loaders.py CustomImageFolder, is imported on its own and read as
load_imagenet reads it."""
from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.cli.main import main
from bench.suites import get_suite, load_task
from benchutil.errors import BenchError
from tasks.robustbench_imagenet import IDS_FILE, robustbench_ids
from tests import bench_fixtures as fx

SPEC = importlib.util.find_spec("robustbench")  # finds the package without running its __init__
RB_DIR = Path(SPEC.submodule_search_locations[0]) if SPEC and SPEC.submodule_search_locations else None
SIDE = 6  # the encoder's input size in this test
# Non-square sizes whose resize and crop torchvision rounds its own way (13x10 -> 7x6 at side 6)
SIZES = [(13, 10), (10, 13), (11, 7), (8, 8), (9, 14), (15, 9)]


def robustbench_file(name: str) -> Path:
    assert RB_DIR is not None, "robustbench is not installed; scripts/setup.sh installs it (without its dependencies)"
    return RB_DIR / "helper_files" / name


def test_our_list_is_robustbenchs_file_byte_for_byte():
    assert IDS_FILE.read_bytes() == robustbench_file("imagenet_test_image_ids.txt").read_bytes()
    ids = robustbench_ids()
    assert len(ids) == len(set(ids)) == 5000 and ids[0] == "n09468604/ILSVRC2012_val_00015253.JPEG"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """DATA_ROOT/imagenet/val/<wnid>/ for the 1000 wnids, holding the 5000 listed files as tiny
    images of their own pixels and one of SIZES."""
    root = tmp_path_factory.mktemp("imagenet")
    val = root / "imagenet" / "val"
    for wnid in json.loads(robustbench_file("imagenet_class_to_id_map.json").read_text()):
        (val / wnid).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k, entry in enumerate(robustbench_ids()):
        w, h = SIZES[k % len(SIZES)]
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(val / entry, format="PNG")
    return root


def robustbench_loaders(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """robustbench/loaders.py as installed, imported on its own. It needs only
    pkg_resources.resource_filename (to find helper_files/ beside itself), which setuptools >= 81 no
    longer ships; the stand-in resolves the path the same way."""
    assert RB_DIR is not None
    stand_in = types.ModuleType("pkg_resources")
    stand_in.resource_filename = lambda module, path: str(Path(sys.modules[module].__file__).parent / path)
    monkeypatch.setitem(sys.modules, "pkg_resources", stand_in)
    spec = importlib.util.spec_from_file_location("robustbench.loaders", RB_DIR / "loaders.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "robustbench.loaders", module)
    spec.loader.exec_module(module)
    return module


def robustbench_samples(val: Path, n: int, monkeypatch: pytest.MonkeyPatch) -> tuple[torch.Tensor, torch.Tensor]:
    """robustbench/data.py load_imagenet(n, data_dir, prepr): CustomImageFolder(data_dir + '/val',
    prepr) through a DataLoader(batch_size=n, shuffle=False, num_workers=4), its first batch; prepr
    is RobustVLM's preprocessor_without_normalize (CLIP_eval/eval_utils.py load_clip_model: the
    model's open_clip transform without its last step, Normalize)."""
    import open_clip

    prepr = open_clip.image_transform(SIDE, is_train=False)
    prepr.transforms = prepr.transforms[:-1]
    dataset = robustbench_loaders(monkeypatch).CustomImageFolder(str(val), prepr)
    # fork: a fresh interpreter could not import robustbench.loaders (the package's __init__ fails)
    loader = torch.utils.data.DataLoader(dataset, batch_size=n, shuffle=False, num_workers=4,
                                         multiprocessing_context="fork")
    x, y, _ = next(iter(loader))
    return x, y


@pytest.mark.filterwarnings("ignore:This DataLoader will create 4 worker processes")
def test_the_samples_labels_and_pixels_are_robustbenchs(data_root, monkeypatch):
    task = load_task(get_suite("paper"), "imagenet", str(data_root))
    assert task.settings["selection"] == "robustbench"
    ids = task.sample_ids(None, seed=3)  # all of them, whatever --seed
    assert ids == robustbench_ids() and task.sample_ids(37, seed=0) == ids[:37]
    ids = task.sample_ids(5000, seed=0)
    x, y = task.load(ids, SIDE)
    x_rb, y_rb = robustbench_samples(data_root / "imagenet" / "val", 5000, monkeypatch)
    assert torch.equal(y, y_rb) and torch.equal(x, x_rb)
    wnids = json.loads(robustbench_file("imagenet_class_to_id_map.json").read_text())
    assert y.tolist() == [wnids[i.split("/")[0]] for i in ids]  # open_clip's class order


def test_more_than_5000_or_a_missing_file_is_one_line(data_root, tmp_path, capsys):
    task = load_task(get_suite("paper"), "imagenet1k", str(data_root))
    with pytest.raises(BenchError, match="fixed list of 5000 .*, not 5001: pass --n-samples 5000 or fewer"):
        task.sample_ids(5001, 0)
    checkpoint = fx.save_full_safetensors(fx.random_model(seed=0), tmp_path / "m.safetensors")
    assert main(["run", "--suite", "paper", "--data-root", str(data_root), "--encoder", str(checkpoint),
                 "--task", "imagenet", "--n-samples", "6000", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not 6000: pass --n-samples 5000 or fewer" in err
    assert not (tmp_path / "runs").exists()
    third = data_root / "imagenet" / "val" / robustbench_ids()[2]
    moved = third.rename(third.with_suffix(".moved"))
    try:
        assert len(task.sample_ids(2, 0)) == 2  # only the first n need to be there
        with pytest.raises(BenchError, match=f"{third} is missing, one of the 5000") as raised:
            task.sample_ids(3, 0)
        assert "\n" not in str(raised.value)
    finally:
        moved.rename(third)
