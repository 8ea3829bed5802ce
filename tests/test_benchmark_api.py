"""bench.benchmark(model, ...): any model, one evaluation path with `bench run`.

The tiny zoo's clip evaluated by name on the command line, and the same weights handed over as a
raw open_clip model, as a module that merely meets the Encoder contract, or as a plain classifier
with its logits in another class order, give the same per-sample records.
"""
from __future__ import annotations

import json
import random

import pytest
import torch
from torch import nn

from bench import benchmark, load_encoder
from bench.cli.main import main
from bench.run.store import read_config, read_run_records
from bench.suites import get_suite, load_task
from benchutil.errors import BenchError
from tasks.zeroshot import LOGIT_SCALE, class_weights

COMMON = {"attack": "apgd", "eps": "0,4/255", "n_samples": 8, "steps": 5, "batch_size": 4}
# what a record says about its sample (the run's own name is not in a record)
FIELDS = ("id", "clean_score", "adv_score", "winner", "linf", "l2", "label", "clean_pred", "adv_pred", "robust")


def records(table) -> list[list[dict]]:
    return [[{k: r.get(k) for k in FIELDS} for r in sorted(read_run_records(run), key=lambda r: r["id"])]
            for run in table["run"]]


@pytest.fixture(scope="module")
def cli_records(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    argv = ["run", "--encoder", "clip", "--task", "tiny-shape", "--out", str(out)]
    for key, value in COMMON.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    assert main(argv) == 0
    runs = sorted(out.iterdir(), key=lambda p: "clean" not in p.name)  # clean first, as benchmark's rows
    return [[{k: r.get(k) for k in FIELDS} for r in sorted(read_run_records(run), key=lambda r: r["id"])]
            for run in runs]


class ContractOnly(nn.Module):
    """A user's module with the Encoder contract and nothing else (no provenance, no open_clip type)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.inner, self.tokenizer, self.image_size = encoder, encoder.tokenizer, encoder.image_size

    def encode_image(self, x, normalize=True):
        return self.inner.encode_image(x, normalize)

    def encode_text(self, tokens, normalize=True):
        return self.inner.encode_text(tokens, normalize)


class Classifier(nn.Module):
    """images -> logits over `classnames` (in its own order): the zero-shot head, precomputed."""

    def __init__(self, encoder: nn.Module, weights: torch.Tensor) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("weights", weights)

    def forward(self, x):
        return LOGIT_SCALE * self.encoder.encode_image(x) @ self.weights.T


def test_an_open_clip_model_gives_the_clis_records(cli_records, tmp_path):
    encoder = load_encoder("clip")
    table = benchmark(encoder.clip, tasks="tiny-shape", out=tmp_path, name="my-clip", tokenizer=encoder.tokenizer,
                      **COMMON)
    assert list(table["encoder"]) == ["my-clip", "my-clip"] and list(table["eps"]) == ["clean", "4/255"]
    assert records(table) == cli_records
    config = read_config(table["run"][1] / "config.json")
    assert config["provenance"]["source"].startswith("python:open_clip.") and config["command"][0] == "bench.benchmark"


def test_a_module_meeting_the_encoder_contract_gives_the_clis_records(cli_records, tmp_path):
    table = benchmark(ContractOnly(load_encoder("clip")), tasks=["tiny-shape"], out=tmp_path, **COMMON)
    assert set(table["encoder"]) == {"contractonly"}
    assert records(table) == cli_records


def test_a_plain_classifier_in_another_class_order_gives_the_clis_records(cli_records, tmp_path):
    encoder = load_encoder("clip")
    data = load_task(get_suite("tiny"), "tiny-shape", None).data
    names = list(data.classnames)
    random.Random(1).shuffle(names)  # the classifier's own logit order
    weights = class_weights(encoder, names, data.templates)
    table = benchmark(Classifier(encoder, weights), tasks="tiny-shape", out=tmp_path, class_names=names,
                      image_size=encoder.image_size, **COMMON)
    assert records(table) == cli_records


def test_a_second_call_resumes_and_writes_nothing(tmp_path):
    encoder = load_encoder("clip")
    first = benchmark(encoder, tasks="tiny-shape", out=tmp_path, **COMMON)
    files = {p: p.read_bytes() for p in tmp_path.rglob("records*.jsonl")}
    second = benchmark(encoder, tasks="tiny-shape", out=tmp_path, **COMMON)
    assert first.drop(columns="run").equals(second.drop(columns="run")) and list(first["run"]) == list(second["run"])
    assert {p: p.read_bytes() for p in tmp_path.rglob("records*.jsonl")} == files


def test_a_classifier_on_a_captioning_task_is_refused_in_one_line(tmp_path):
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3))
    with pytest.raises(BenchError) as err:
        benchmark(model, tasks="tiny-shape,tiny-captions", class_names=["a", "b", "c"], out=tmp_path)
    assert "cannot be evaluated on tiny-captions (captioning)" in str(err.value)
    assert "\n" not in str(err.value) and not any(tmp_path.iterdir())


@pytest.mark.parametrize(("call", "message"), [
    (lambda out: benchmark(load_encoder("clip"), tasks="tiny-shape", out=out, n_sample=3), "did you mean 'n_samples'"),
    (lambda out: benchmark(load_encoder("clip"), tasks="tiny-shape", out=out, eps="4"), "ambiguous"),
    (lambda out: benchmark(load_encoder("clip"), tasks="tiny-shap", out=out), "did you mean 'tiny-shape'"),
    (lambda out: benchmark("clip", tasks="tiny-shape", out=out, name="x"), "apply to a model object"),
    (lambda out: benchmark(object(), tasks="tiny-shape", out=out), "not a torch.nn.Module"),
    (lambda out: benchmark(nn.Linear(2, 2), tasks="tiny-shape", out=out), "has no encode_image"),
    (lambda out: benchmark(nn.Linear(2, 2), tasks="tiny-shape", out=out, class_names=["x", "y"]),
     "do not match tiny-shape's classes"),
    (lambda out: benchmark(load_encoder("clip"), tasks="tiny-shape", out=out, steps=0), "positive integer"),
])
def test_bad_arguments_are_one_line_errors(call, message, tmp_path):
    with pytest.raises(BenchError) as err:
        call(tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not any(tmp_path.rglob("records*.jsonl"))


def test_the_record_identity_is_the_weights_not_the_object(tmp_path):
    """Two objects with the same weights share runs; other weights never do."""
    encoder = load_encoder("clip")
    a = benchmark(ContractOnly(encoder), tasks="tiny-shape", out=tmp_path, attack="none", eps="0", n_samples=4)
    b = benchmark(ContractOnly(load_encoder("clip")), tasks="tiny-shape", out=tmp_path, attack="none", eps="0",
                  n_samples=4)
    assert list(a["run"]) == list(b["run"])
    other = load_encoder("fare-4")
    c = benchmark(ContractOnly(other), tasks="tiny-shape", out=tmp_path, attack="none", eps="0", n_samples=4)
    assert list(c["run"]) != list(a["run"])
    sha = json.loads((c["run"][0] / "config.json").read_text())["sha256"]
    assert len(sha) == 64
