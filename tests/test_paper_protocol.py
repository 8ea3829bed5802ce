"""The paper suite's protocol choices, offline: RobustVLM's zero-shot attack settings, sample
counts, the leaderboard's average, and a run on paper-layout folders with a local checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from attacks import worst_case
from bench.cli.main import main
from bench.report.leaderboard import accuracy_table
from bench.suites import get_suite, load_task
from tests import bench_fixtures as fx


class TwoClasses(torch.nn.Module):
    """A binary classifier (PCAM's shape of problem): the two logits of the digits CNN's first classes."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, :2]


def test_binary_datasets_get_apgd_ce_alone(digits):
    model, x, y = digits
    binary = TwoClasses(model).eval()
    with torch.no_grad():
        labels = binary(x).argmax(1)
    result = worst_case(binary, x, labels, attacks=["apgd-ce", "apgd-t"], eps=0.3, steps=5)
    alone = worst_case(binary, x, labels, attacks=["apgd-ce"], eps=0.3, steps=5)
    assert "apgd-t" not in result.winner and torch.equal(result.robust, alone.robust)


def test_member_args_reach_only_their_member(digits):
    model, x, y = digits
    per_member = worst_case(model, x, y, attacks=["apgd-ce"], eps=0.1, steps=5,
                            member_args={"apgd-ce": {"restarts": 3}, "apgd-t": {"restarts": 7}})
    everywhere = worst_case(model, x, y, attacks=["apgd-ce"], eps=0.1, steps=5, args={"restarts": 3})
    assert torch.equal(per_member.x_adv, everywhere.x_adv)


def test_paper_sample_counts_and_restarts():
    paper, tiny = get_suite("paper"), get_suite("tiny")
    assert paper.default_samples("imagenet") == 5000 and paper.default_samples("cifar10") == 1000
    assert paper.default_samples("coco") == 500 and tiny.default_samples("tiny-shape") == 100
    assert paper.zero_shot_member_args == {"apgd-ce": {"restarts": 5}} and tiny.zero_shot_member_args == {}


def test_the_zero_shot_average_leaves_imagenet_out():
    rows = [{"encoder": "m", "task": t, "id": str(i), "clean": c, "adv": c, "metric": "accuracy %",
             "attack": "none", "eps": 0.0, "eps_label": "clean", "threat": "clean"}
            for t, c in (("imagenet", 10.0), ("cifar10", 50.0), ("pets", 70.0)) for i in range(3)]
    table = accuracy_table(pd.DataFrame(rows))
    assert table.loc["m", "avg clean"] == 60.0 and table.loc["m", "imagenet clean"] == 10.0


def _folder(root: Path, classes: list[str], per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(root / c / f"{i}.png")
    (root / "classnames.txt").write_text("\n".join(classes) + "\n")
    (root / "templates.txt").write_text("a photo of a {}.\n")


def test_a_paper_run_records_its_protocol(tmp_path):
    data = tmp_path / "data"
    _folder(data / "pcam" / "test", ["benign", "tumour"], 3, 0)
    checkpoint = fx.save_full_safetensors(fx.random_model(seed=0), tmp_path / "m.safetensors")
    assert main(["run", "--suite", "paper", "--data-root", str(data), "--encoder", str(checkpoint), "--task", "pcam",
                 "--attack", "aa", "--eps", "4/255", "--steps", "2", "--n-samples", "6",
                 "--out", str(tmp_path / "runs")]) == 0
    (config_path,) = (tmp_path / "runs").rglob("config.json")
    config = json.loads(config_path.read_text())
    assert config["task_settings"] == {"member_args": {"apgd-ce": {"restarts": 5}}}
    records = [json.loads(line) for line in (config_path.parent / "records.jsonl").read_text().splitlines()]
    assert len(records) == 6 and all(r["winner"] != "apgd-t" for r in records)


@pytest.mark.parametrize("task", ["pcam"])
def test_a_missing_paper_dataset_is_one_line(tmp_path, capsys, task):
    assert main(["run", "--suite", "paper", "--data-root", str(tmp_path), "--encoder", "x.safetensors",
                 "--task", task]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_cifar_is_attacked_at_its_own_resolution(tmp_path):
    """CIFAR-10/100 and STL-10: the eps ball lives in the dataset's pixels; the model resizes
    inside (CLIP_benchmark's cli.py: torchvision Resize, bicubic)."""
    from torchvision.transforms import InterpolationMode, Resize

    from bench import load_encoder
    from tasks.zeroshot import ZeroShotClassifier

    data = tmp_path / "data"
    _folder(data / "cifar10" / "test", ["cat", "dog", "ship"], 3, 1)
    for path in (data / "cifar10" / "test").rglob("*.png"):  # CIFAR's size is below the encoder's
        Image.open(path).resize((16, 16)).save(path)
    checkpoint = fx.save_full_safetensors(fx.random_model(seed=0), tmp_path / "m.safetensors")
    assert main(["run", "--suite", "paper", "--data-root", str(data), "--encoder", str(checkpoint), "--task",
                 "cifar10", "--attack", "apgd", "--eps", "8/255", "--steps", "2", "--n-samples", "9",
                 "--out", str(tmp_path / "runs")]) == 0
    (config_path,) = (tmp_path / "runs").rglob("config.json")
    assert json.loads(config_path.read_text())["task_settings"]["native_resolution"] is True

    encoder = load_encoder(str(checkpoint))
    weights = torch.nn.functional.normalize(torch.randn(3, encoder.clip.visual.output_dim), dim=-1)
    classifier = ZeroShotClassifier(encoder, weights).eval()
    x = torch.rand(2, 3, 16, 16)
    reference = Resize(encoder.image_size, interpolation=InterpolationMode.BICUBIC, antialias=False)(x)
    with torch.no_grad():
        assert torch.allclose(classifier(x), classifier(reference), atol=1e-5)


def test_a_paper_dataset_never_falls_back_to_folder_names(tmp_path, capsys):
    """Without templates.txt the clip_benchmark package's templates are used; without
    classnames.txt (the package does not ship DTD's) the run refuses, naming the file and
    the papers' webdataset copy."""
    from tasks.clip_benchmark import package_templates

    data = tmp_path / "data"
    _folder(data / "dtd" / "test", ["banded", "dotted", "zigzagged"], 2, 0)
    (data / "dtd" / "test" / "templates.txt").unlink()
    task = load_task(get_suite("paper"), "dtd", str(data))
    assert task.data.templates == package_templates("vtab/dtd") and task.data.templates != ["a photo of a {}."]
    (data / "dtd" / "test" / "classnames.txt").unlink()
    checkpoint = fx.save_full_safetensors(fx.random_model(seed=0), tmp_path / "m.safetensors")
    assert main(["run", "--suite", "paper", "--data-root", str(data), "--encoder", str(checkpoint), "--task", "dtd",
                 "--attack", "none", "--eps", "0", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "classnames.txt is missing" in err and "clip-benchmark/wds_vtab-dtd" in err and err.count("\n") == 1


def test_hidden_folders_are_not_classes(tmp_path):
    from tasks.imagefolder import read_image_folder

    _folder(tmp_path / "set", ["a", "b"], 2, 0)
    (tmp_path / "set" / ".ipynb_checkpoints").mkdir()
    assert read_image_folder(tmp_path / "set", "set").classnames == ["a", "b"]
