"""The zero-shot head, its cache, the seeded sample, and the reference attack adapters in bench run."""
import pytest
import torch
import torch.nn.functional as F

from bench import load_encoder
from bench.cli.main import main
from bench.run.store import read_records
from bench.suites import get_suite, load_task
from tests import bench_fixtures as fx


def _setup(tmp_path):
    return fx.folder_and_checkpoint(tmp_path, per_class=3)


def test_head_is_the_template_ensemble_and_is_cached_by_checkpoint(tmp_path):
    data, ckpt = _setup(tmp_path)
    encoder = load_encoder(str(ckpt))
    task = load_task(get_suite(None), f"folder:{data}", None)
    cache = tmp_path / "cache"
    victim = task.classifier(encoder, cache)
    with torch.no_grad():
        for c, name in enumerate(fx.CLASSES):
            tokens = encoder.tokenizer([f"a photo of a {name}.", f"a drawing of a {name}."])
            mean = F.normalize(encoder.clip.encode_text(tokens), dim=-1).mean(dim=0)
            assert torch.allclose(victim.class_weights[c], mean / mean.norm(), atol=1e-6)
        x, _ = task.load(task.sample_ids(2, 0), encoder.image_size)
        expected = 100 * encoder.encode_image(x) @ victim.class_weights.T
        assert torch.allclose(victim(x), expected)
    cached = list((cache / "heads").glob("*.safetensors"))
    assert len(cached) == 1
    # a second build reads the cached file (changing it shows it is read)
    from safetensors.torch import save_file

    save_file({"class_weights": torch.zeros_like(victim.class_weights)}, str(cached[0]))
    assert torch.count_nonzero(task.classifier(encoder, cache).class_weights) == 0
    other = fx.save_full_safetensors(fx.random_model(seed=5), tmp_path / "other.safetensors")
    assert torch.count_nonzero(task.classifier(load_encoder(str(other)), cache).class_weights) > 0


def test_sample_subset_is_seeded_and_stable(tmp_path):
    data, _ = _setup(tmp_path)
    task = load_task(get_suite(None), f"folder:{data}", None)
    assert task.sample_ids(5, 0) == task.sample_ids(5, 0)
    assert task.sample_ids(5, 0) == task.sample_ids(None, 0)[:5]
    assert task.sample_ids(5, 0) != task.sample_ids(5, 1)


@pytest.mark.long
def test_reference_adapters_run_through_bench(tmp_path, capsys):
    data, ckpt = _setup(tmp_path)
    out = tmp_path / "results"
    common = ["--encoder", str(ckpt), "--task", f"folder:{data}", "--out", str(out), "--eps", "4/255"]
    assert main(["run", *common, "--attack", "torchattacks:PGD", "--steps", "5",
                 "--attack-args", '{"alpha": 0.004, "random_start": false}']) == 0
    assert main(["run", *common, "--attack", "autoattack", "--n-samples", "4"]) == 0
    assert main(["run", *common, "--attack", "torchattacks:PGD", "--attack-args", '{"alpah": 1}']) == 2
    assert "has no argument 'alpah'" in capsys.readouterr().err
    for records in out.rglob("records.jsonl"):
        for r in read_records(records):
            assert r["linf"] <= 4 / 255 + 1e-6
            assert r["winner"] in (None, "clean", "torchattacks:PGD", "autoattack")


def test_list_prints_every_registry(capsys):
    for what in ("encoders", "attacks", "tasks", "suites"):
        assert main(["list", what, "--suite", "paper"]) == 0
    text = capsys.readouterr().out
    for word in ("sim-clip-4", "hossainzarif19/SimCLIP", "torchattacks:<Name>", "imagenet", "folder:PATH", "paper"):
        assert word in text
