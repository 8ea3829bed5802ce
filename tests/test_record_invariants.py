"""Records mean what they say: robust == (adv_pred == label), no sample broken at distance 0,
points inside the ball, the winner consistent; checked on records of every task kind, and the
store refuses to write one that contradicts itself."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from attacks import worst_case
from bench.cli.main import main
from bench.run.store import CONFIG, RunDir, read_run_records
from tasks.record_checks import RecordInvariantError, violations

SOUND = {"id": "a", "clean_score": 100.0, "adv_score": 0.0, "winner": "apgd-ce", "linf": 0.01, "l2": 0.5,
         "label": 1, "clean_pred": 1, "adv_pred": 2, "clean_correct": True, "robust": False}
BROKEN = [
    ({"robust": True, "adv_score": 100.0, "winner": None}, "robust disagrees with adv_pred"),
    ({"linf": 0.0}, "recorded point is the clean image"),
    ({"linf": 0.1}, "outside the ball"),
    ({"clean_pred": 2}, "clean_correct disagrees"),
    ({"winner": None}, "winner None for a sample with robust = False"),
    ({"winner": "clean"}, "winner 'clean' for a sample with clean_correct = True"),
    ({"adv_score": 100.0}, "scores are not 100"),
    ({"adv_score": float("nan")}, "not finite"),
]


def test_a_sound_record_passes():
    assert violations(SOUND, 4 / 255, "linf") == []


@pytest.mark.parametrize("change, message", BROKEN, ids=[m for _, m in BROKEN])
def test_each_contradiction_is_named(change, message):
    found = violations({**SOUND, **change}, 4 / 255, "linf")
    assert any(message in v for v in found), found


def test_vlm_records_keep_the_clean_output_where_the_clean_output_won():
    record = {"id": "q", "clean_score": 60.0, "adv_score": 60.0, "winner": "clean", "linf": 0.0, "l2": 0.0,
              "clean_output": "two", "adv_output": "two"}
    assert violations(record, 2 / 255, "linf") == []
    assert violations({**record, "adv_output": "three"}, 2 / 255, "linf")
    assert violations({**record, "adv_score": 70.0, "winner": "apgd:ref-0", "linf": 0.004}, 2 / 255, "linf")
    assert violations({**record, "adv_score": 70.0, "target_hit": False, "winner": None, "linf": 0.004},
                      2 / 255, "linf") == []  # a targeted run keeps its last output, which may score higher


def test_the_store_refuses_a_record_that_contradicts_itself(tmp_path):
    config = {"encoder": "m", "task": "t", "attack": "aa", "eps": 4 / 255, "eps_label": "4/255",
              "metric": "accuracy %", "norm": "linf"}
    store = RunDir(tmp_path / "run", config, ("encoder",))
    try:
        with pytest.raises(RecordInvariantError, match="robust disagrees"):
            store.append([{**SOUND, "robust": True, "adv_score": 100.0, "winner": None}])
        store.append([SOUND])
    finally:
        store.close()
    assert [r["id"] for r in read_run_records(tmp_path / "run")] == ["a"]


class BatchDependent(nn.Module):
    """A near-tie that flips with the batch: class 1's logit rises as the batch shrinks (as a
    real model's can, through batch-size dependent kernels), and bright images are class 1 outright.
    Its gradient in x is zero, so an attack without random start returns x itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bright = (x.mean(dim=(1, 2, 3)) > 0.5).float()
        n = x.shape[0]
        other = 0.5 + bright - 0.001 * (n - 5) + 0 * x.sum(dim=(1, 2, 3))
        return torch.stack([torch.full_like(other, 0.5) + 0 * x.sum(dim=(1, 2, 3)), other], dim=1)


def test_a_near_tie_is_decided_by_the_pass_that_is_recorded():
    x = torch.cat([torch.full((4, 3, 8, 8), 0.2), torch.full((4, 3, 8, 8), 0.8)])
    y = torch.zeros(8, dtype=torch.long)  # dark images right on the full batch, bright ones wrong
    result = worst_case(BatchDependent(), x, y, attacks=["apgd-ce"], eps=4 / 255, steps=3,
                        args={"random_start": False})
    # In the attack's batch of the four dark images, their clean point reads as class 1; the point
    # returned is x itself, so it keeps the prediction of the clean pass: not broken, robust.
    assert result.clean_correct.tolist() == [True] * 4 + [False] * 4
    assert result.robust.tolist() == [True] * 4 + [False] * 4
    assert torch.equal(result.robust, result.adv_pred == y)
    assert result.winner == [None] * 4 + ["clean"] * 4


def _near_random_folder(root: Path, classes: int = 4, per_class: int = 5) -> Path:
    """32 px images of noise: predictions of the tiny CLIP sit on near-ties."""
    rng = np.random.default_rng(0)
    names = ["airplane", "automobile", "bird", "cat"][:classes]
    for name in names:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = (0.5 + 0.04 * rng.standard_normal((32, 32, 3))).clip(0, 1)
            Image.fromarray((pixels * 255).astype(np.uint8)).save(root / name / f"{i}.png")
    (root / "classnames.txt").write_text("\n".join(names) + "\n")
    return root


RUNS = [
    ("zero-shot aa", ["--task", "tiny-shape", "--attack", "aa", "--eps", "0,4/255"]),
    ("zero-shot L2", ["--task", "tiny-colour", "--attack", "apgd", "--norm", "l2", "--eps", "0.5"]),
    ("zero-shot external", ["--task", "tiny-count", "--attack", "torchattacks:PGD", "--eps", "8/255"]),
    ("near-random 32 px", ["--task", "folder:{folder}", "--attack", "apgd", "--eps", "8/255", "--n-samples", "20"]),
    ("captioning", ["--task", "tiny-captions", "--attack", "apgd", "--eps", "4/255"]),
    ("vqa aa", ["--task", "tiny-vqa,tiny-textvqa", "--attack", "aa", "--eps", "8/255"]),
    ("vqa targeted", ["--task", "tiny-vqa", "--attack", "apgd", "--eps", "8/255", "--target", "maybe"]),
]


@pytest.mark.parametrize("name, args", RUNS, ids=[n for n, _ in RUNS])
def test_every_task_kind_writes_records_that_hold_the_invariants(tmp_path, name, args):
    folder = _near_random_folder(tmp_path / "data")
    args = [a.replace("{folder}", str(folder)) for a in args]
    out = tmp_path / "runs"
    assert main(["run", "--encoder", "clip", "--n-samples", "6", "--steps", "3", "--batch-size", "3", *args,
                 "--out", str(out)]) == 0
    checked = 0
    for config_path in out.rglob(CONFIG):
        config = json.loads(config_path.read_text())
        for record in read_run_records(config_path.parent):
            assert violations(record, config["eps"], config["norm"]) == [], record
            if "label" in record:
                assert record["robust"] == (record["adv_pred"] == record["label"])
                assert not (record["linf"] == 0 and not record["robust"] and record["clean_correct"])
            checked += 1
    assert checked >= 6
