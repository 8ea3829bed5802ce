"""load_encoder on real files in every supported format, and its errors."""
import os
import pickle
import time

import pytest
import torch

from bench import load_encoder
from benchutil.errors import BenchError
from tests import bench_fixtures as fx


@pytest.fixture(scope="module")
def model():
    return fx.random_model(seed=0)


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _reference_embedding(model, images):
    mean = torch.tensor(open_clip_mean()).view(1, 3, 1, 1)
    std = torch.tensor(open_clip_std()).view(1, 3, 1, 1)
    with torch.no_grad():
        return torch.nn.functional.normalize(model.encode_image((images - mean) / std), dim=-1)


def open_clip_mean():
    import open_clip

    return open_clip.OPENAI_DATASET_MEAN


def open_clip_std():
    import open_clip

    return open_clip.OPENAI_DATASET_STD


@pytest.mark.parametrize("fmt", ["full-safetensors", "full-pickle", "vision-pickle", "vision-safetensors"])
def test_every_format_loads_back_identically(tmp_path, model, images, fmt):
    base = fx.save_full_safetensors(fx.random_model(seed=1), tmp_path / "base.safetensors")
    path = {
        "full-safetensors": lambda: fx.save_full_safetensors(model, tmp_path / "m.safetensors"),
        "full-pickle": lambda: fx.save_full_pickle(model, tmp_path / "m.pt"),
        "vision-pickle": lambda: fx.save_vision_pickle(model, tmp_path / "vision.pt", base),
        "vision-safetensors": lambda: fx.save_vision_safetensors(model, tmp_path / "vision.safetensors", base),
    }[fmt]()
    encoder = load_encoder(str(path))
    with torch.no_grad():
        assert torch.equal(encoder.encode_image(images), _reference_embedding(model, images))
    assert encoder.image_size == 32
    assert len(encoder.provenance.sha256.split("+")[-1]) == 64
    assert encoder.provenance.architecture == fx.ARCH
    if fmt.startswith("vision"):
        # the text tower is the base model's
        tokens = encoder.tokenizer(["a photo of a dog"])
        base_model = fx.random_model(seed=1)
        with torch.no_grad():
            expected = torch.nn.functional.normalize(base_model.encode_text(tokens), dim=-1)
            assert torch.equal(encoder.encode_text(tokens), expected)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned_marker",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"visual.conv1.weight": RunsCode()}, f)
    path.with_suffix(".json").write_text('{"architecture": "tiny-vit-test"}')
    with pytest.raises(BenchError, match="refused for safety"):
        load_encoder(str(path))
    assert not (tmp_path / "pwned_marker").exists()


def test_truncated_checkpoint_is_a_clear_error(tmp_path, model):
    path = fx.save_full_safetensors(model, tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BenchError, match=r"cannot read checkpoint .*m.safetensors"):
        load_encoder(str(path), arch=fx.ARCH)


def test_wrong_architecture_is_named(tmp_path, model):
    path = fx.save_full_safetensors(model, tmp_path / "m.safetensors")
    with pytest.raises(BenchError, match="does not fit ViT-B-32: .*shape mismatches"):
        load_encoder(str(path), arch="ViT-B-32")


def test_unknown_names_suggest_the_closest():
    with pytest.raises(BenchError, match="unknown encoder 'sim-clp'; did you mean 'sim-clip'"):
        load_encoder("sim-clp", suite="paper")
    with pytest.raises(BenchError, match="does not exist"):
        load_encoder("no/such/file.safetensors")


def test_checkpoint_without_architecture_asks_for_arch(tmp_path, model):
    path = tmp_path / "bare.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(BenchError, match="--arch"):
        load_encoder(str(path))
    assert load_encoder(str(path), arch=fx.ARCH).provenance.architecture == fx.ARCH


@pytest.mark.parametrize("name", ["fare-4", "sim-clip", "clip", "open_clip:ViT-B-32/laion2b_s34b_b79k"])
def test_offline_zoo_fails_fast_with_the_source_and_the_alternative(monkeypatch, name):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(BenchError) as err:
        load_encoder(name, suite="paper")
    message = str(err.value)
    assert "not available" in message and "huggingface.co/" in message and "--suite tiny" in message
    assert time.perf_counter() - start < 30  # no minute of retries (generous bound for model construction)


def test_zoo_specs_force_quick_gelu_for_openai_fine_tunes():
    from bench.suites import get_suite

    zoo = get_suite("paper").encoders
    for name in ("clip", "tecoa-2", "fare-4", "sim-clip-2"):
        assert zoo.get(name).value.quick_gelu
    assert not zoo.get("fare4-vit-b-32").value.quick_gelu
    assert zoo.get("sim-clip").name == "sim-clip-4"


def test_weights_identity_ignores_header_order_and_files_are_deterministic(tmp_path, model):
    """safetensors writes metadata in a random order; the identity of the weights must not see it."""
    import json

    from safetensors.torch import save_file

    from bench.encoders.weights import save_safetensors, sha256_of, weights_sha256

    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    metadata = {f"key{i}": str(i) for i in range(12)}
    plain = [tmp_path / f"plain{i}.safetensors" for i in range(4)]
    for path in plain:
        save_file(state, str(path), metadata=metadata)
    assert len({weights_sha256(p) for p in plain}) == 1
    written = [tmp_path / f"det{i}.safetensors" for i in range(4)]
    for path in written:
        save_safetensors(state, path, metadata)
    assert len({sha256_of(p) for p in written}) == 1  # byte for byte
    assert weights_sha256(written[0]) == weights_sha256(plain[0])
    size = int.from_bytes(written[0].read_bytes()[:8], "little")
    header = json.loads(written[0].read_bytes()[8 : 8 + size])
    assert list(header) == sorted(header) and list(header["__metadata__"]) == sorted(metadata)
    pickle = tmp_path / "same.pt"
    torch.save(state, pickle)
    nometa = tmp_path / "nometa.safetensors"
    save_file(state, str(nometa))
    assert weights_sha256(pickle) == weights_sha256(nometa)  # one state dict, one identity, either format
