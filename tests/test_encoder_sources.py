"""The encoder sources beyond open_clip files, on checkpoints written here in their real formats:
transformers CLIPModel folders (hf-clip:), an entry of a training dict (SOURCE#KEY), files over
HTTP with a pinned sha256 (url:), ConvNeXt towers and a resolution other than 32 px."""
import functools
import http.server
import json
import threading
from pathlib import Path

import open_clip
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from bench import load_encoder
from bench.cli.main import main
from bench.encoders.load import EncoderSpec, build_encoder
from bench.encoders.weights import (
    check_readable,
    sha256_of,
    state_sha256,
    weights_sha256,
)
from bench.run.store import read_records
from benchutil.errors import BenchError
from tests import bench_fixtures as fx

SENTENCES = ["a photo of a dog.", "A drawing of a red square, isn't it?", "yellow   cross", "two   spaces and CAPS!"]


def tiny_hf_clip(seed: int = 0):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 16},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16)
    return CLIPModel(config).eval()


def save_hf_clip(model, folder: Path) -> Path:
    """The LEAF layout: config.json and the weights of both towers, no processor, no tokenizer."""
    model.save_pretrained(str(folder))
    return folder


def write_openai_bpe_files(folder: Path) -> Path:
    """vocab.json and merges.txt, the files of OpenAI's CLIPTokenizer, written from the BPE that
    open_clip ships (the same vocabulary; OpenAI's files name the special tokens <|...|>)."""
    bpe = open_clip.tokenizer.SimpleTokenizer()
    special = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {special.get(token, token): i for token, i in bpe.encoder.items()}
    merges = sorted(bpe.bpe_ranks, key=bpe.bpe_ranks.get)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n",
                                       encoding="utf-8")
    return folder


def hf_cache_repo(cache: Path, repo: str, files: Path) -> None:
    """A hub repository in the Hugging Face cache layout, as a download leaves it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in files.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)


def reference_features(model, pixels: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' own CLIPModel.get_image_features / get_text_features, normalised."""
    with torch.no_grad():
        image, text = model.get_image_features(pixel_values=pixels), model.get_text_features(input_ids=tokens)
    pooled = [getattr(out, "pooler_output", out) for out in (image, text)]  # a ModelOutput in transformers 5
    return F.normalize(pooled[0], dim=-1), F.normalize(pooled[1], dim=-1)


def assert_same_features(encoder, model) -> None:
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    tokens = encoder.tokenizer(SENTENCES)
    expected_image, expected_text = reference_features(model, (images - encoder.mean) / encoder.std, tokens)
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_image(images), expected_image, rtol=0, atol=1e-6)
        torch.testing.assert_close(encoder.encode_text(tokens), expected_text, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def hf_model():
    return tiny_hf_clip(seed=0)


@pytest.fixture(scope="module")
def hf_folder(hf_model, tmp_path_factory):
    return save_hf_clip(hf_model, tmp_path_factory.mktemp("leaf") / "CLIP-tiny-FARE2")


# --- transformers CLIPModel folders and hub ids (hf-clip:) -----------------------------------


def test_a_clip_model_folder_gives_transformers_own_features(hf_model, hf_folder):
    encoder = load_encoder(str(hf_folder))
    assert_same_features(encoder, hf_model)
    assert encoder.image_size == 32
    assert encoder.provenance.architecture == f"hf-clip:{hf_folder}"
    assert encoder.provenance.source == str(hf_folder)
    assert encoder.provenance.sha256 == weights_sha256(hf_folder / "model.safetensors")
    # No processor in the folder: OpenAI CLIP's normalisation and BPE (the default processor base)
    assert tuple(encoder.mean.flatten().tolist()) == pytest.approx(open_clip.OPENAI_DATASET_MEAN)
    assert tuple(encoder.std.flatten().tolist()) == pytest.approx(open_clip.OPENAI_DATASET_STD)
    assert torch.equal(encoder.tokenizer(SENTENCES), open_clip.tokenize(SENTENCES, context_length=16))


def test_a_hub_id_resolves_through_the_hugging_face_cache(hf_model, hf_folder, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the missing repository below fails at once
    cache = tmp_path / "hub"
    hf_cache_repo(cache, "LEAF-test/CLIP-tiny-FARE2", hf_folder)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    encoder = load_encoder("hf-clip:LEAF-test/CLIP-tiny-FARE2")
    assert_same_features(encoder, hf_model)
    assert encoder.provenance.architecture == "hf-clip:LEAF-test/CLIP-tiny-FARE2"
    assert encoder.provenance.source == "hf-clip:LEAF-test/CLIP-tiny-FARE2"
    assert encoder.provenance.sha256 == weights_sha256(hf_folder / "model.safetensors")
    # A zoo entry names the repository and the processor base explicitly.
    processor = tmp_path / "processor"
    processor.mkdir()
    (processor / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5, 0.5, 0.5],
                                                                    "image_std": [0.25, 0.25, 0.25]}))
    hf_cache_repo(cache, "base-test/clip-processor", processor)
    spec = EncoderSpec("hf-clip:LEAF-test/CLIP-tiny-FARE2", "hf-clip:LEAF-test/CLIP-tiny-FARE2",
                       processor_base="hf-clip:base-test/clip-processor")
    zoo = build_encoder(spec, "leaf-tiny")
    assert zoo.mean.flatten().tolist() == [0.5] * 3 and zoo.std.flatten().tolist() == [0.25] * 3
    assert_same_features(zoo, hf_model)
    with pytest.raises(BenchError, match="model LEAF-test/missing is not available"):
        load_encoder("hf-clip:LEAF-test/missing")


def test_the_folder_tokenizer_gives_open_clip_bpe_ids(hf_model, hf_folder, tmp_path):
    """OpenAI's CLIPTokenizer files (vocab.json, merges.txt) read by transformers give the ids of
    open_clip's SimpleTokenizer on these sentences: up to the end-of-text token, then padding
    (transformers pads with end-of-text, open_clip with 0; the causal text tower pools the first)."""
    folder = tmp_path / "with-tokenizer"
    save_hf_clip(hf_model, folder)
    write_openai_bpe_files(folder)
    encoder = load_encoder(str(folder))
    assert type(encoder.tokenizer).__name__ == "FolderTokenizer"
    long = "a photo of " + "a very " * 20 + "long dog"
    ours, theirs = encoder.tokenizer([*SENTENCES, long]), open_clip.tokenize([*SENTENCES, long], context_length=16)
    assert ours.shape == theirs.shape == (5, 16)
    eot = 49407
    for row_ours, row_theirs in zip(ours.tolist(), theirs.tolist()):
        end = row_theirs.index(eot)
        assert row_ours[: end + 1] == row_theirs[: end + 1]
        assert set(row_ours[end + 1 :]) <= {eot}
    assert ours[-1, -1] == eot  # truncated: the end-of-text token kept last
    assert_same_features(encoder, hf_model)
    with torch.no_grad():  # the padding differs, the features do not
        torch.testing.assert_close(encoder.encode_text(ours), encoder.encode_text(theirs), rtol=0, atol=1e-6)


def test_the_folder_processor_sets_the_normalisation(hf_model, tmp_path):
    folder = save_hf_clip(hf_model, tmp_path / "with-processor")
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.1, 0.2, 0.3],
                                                                 "image_std": [0.4, 0.5, 0.6], "crop_size": 32}))
    encoder = load_encoder(str(folder))
    assert encoder.mean.flatten().tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert encoder.std.flatten().tolist() == pytest.approx([0.4, 0.5, 0.6])
    assert_same_features(encoder, hf_model)


def test_a_zero_shot_run_with_a_clip_model_folder(hf_folder, tmp_path, capsys):
    data = fx.make_image_folder(tmp_path / "shapes", per_class=2)
    out = tmp_path / "runs"
    argv = ["run", "--encoder", str(hf_folder), "--task", f"folder:{data}", "--attack", "apgd", "--eps", "0,4/255",
            "--steps", "2", "--batch-size", "4", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    configs = [json.loads(p.read_text()) for p in sorted(out.rglob("config.json"))]
    assert len(configs) == 2
    for config in configs:
        assert config["provenance"]["architecture"] == f"hf-clip:{hf_folder}"
        assert config["sha256"] == weights_sha256(hf_folder / "model.safetensors")
    for records in out.rglob("records.jsonl"):
        assert len(read_records(records)) == 8


@pytest.mark.parametrize("arch", ["hf-clip", "tiny-convnext-test"])
def test_a_tower_without_vit_patch_tokens_is_refused_by_a_vlm_in_one_line(hf_folder, arch):
    from bench.api.evaluate import LoadedModels
    from bench.suites import get_suite

    encoder = load_encoder(str(hf_folder)) if arch == "hf-clip" else build_encoder(EncoderSpec(arch, "random"), arch)
    models = LoadedModels(encoder, "tiny-llava", get_suite("tiny"), "cpu", {})
    with pytest.raises(BenchError, match="reads the patch tokens of an open_clip ViT vision tower") as err:
        models.vlm()
    assert "\n" not in str(err.value)


def test_hf_clip_inputs_that_cannot_work_are_one_line(hf_folder, tmp_path):
    not_clip = tmp_path / "siglip"
    not_clip.mkdir()
    (not_clip / "config.json").write_text('{"model_type": "siglip"}')
    (not_clip / "model.safetensors").write_bytes(b"")
    cases = [
        (lambda: load_encoder("hf-clip:LEAF-CLIP"), "write hf-clip:ORG/NAME"),
        (lambda: load_encoder("hf-clip:LEAF-CLIP/CLIP#key"), "a whole model has none"),
        (lambda: load_encoder(str(hf_folder), arch=fx.ARCH), "--arch and --base do not apply"),
        (lambda: load_encoder(str(hf_folder), base="clip", suite="tiny"), "--arch and --base do not apply"),
        (lambda: build_encoder(EncoderSpec("tiny-clip", "tiny:clip", vision=str(hf_folder)), "x"), "is a folder"),
        (lambda: load_encoder(str(not_clip)), "is a folder; give the weight file in it .* or a transformers CLIPModel folder"),
        (lambda: build_encoder(EncoderSpec("x", str(not_clip) + "/", processor_base="openai"), "x"),
         "processor_base applies to hf-clip models"),
        (lambda: build_encoder(EncoderSpec(f"hf-clip:{not_clip}", str(not_clip)), "x"), "model_type 'siglip'"),
    ]
    for call, message in cases:
        with pytest.raises(BenchError, match=message) as err:
            call()
        assert "\n" not in str(err.value)


def test_bench_train_refuses_an_hf_clip_base_in_one_line_before_writing(hf_folder, tmp_path, capsys):
    """Its tower is transformers', which the trainers do not fine-tune: refused before anything is written."""
    out = tmp_path / "out"
    assert main(["train", "--base", str(hf_folder), "--method", "fare", "--eps", "4/255", "--steps", "2",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a transformers CLIPModel (hf-clip)" in err
    assert not out.exists()


# --- an entry of a training dict (SOURCE#KEY) -------------------------------------------------


def _reference(model, images):
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return F.normalize(model.encode_image((images - mean) / std), dim=-1)


@pytest.mark.parametrize("prefix", ["", "visual.", "module."])
def test_the_vision_tower_under_a_key_of_a_training_dict(tmp_path, prefix):
    """QT-AFT / TeCoA save {'vision_encoder_state_dict': model.visual.state_dict(), 'state_dict':
    <their prompter>, 'optimizer': ..., 'epoch': ...}: without #KEY the wrong dict would be read."""
    base = fx.save_full_safetensors(fx.random_model(seed=1), tmp_path / "base.safetensors")
    tuned = fx.random_model(seed=2)
    vision = {f"{prefix}{k}": v for k, v in tuned.visual.state_dict().items()}
    path = tmp_path / "CLIP-tiny_QTAFT_eps4.pt"
    torch.save({"epoch": 10, "state_dict": {"pad_up": torch.zeros(3)}, "vision_encoder_state_dict": vision,
                "best_acc1": torch.tensor(31.5), "optimizer": {"state": {}, "param_groups": [{"lr": 1e-5}]}}, path)
    path.with_suffix(".json").write_text(json.dumps({"architecture": fx.ARCH, "base": str(base)}))
    source = f"{path}#vision_encoder_state_dict"
    check_readable(Path(source))  # what bench run checks before the first run
    encoder = load_encoder(source)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(encoder.encode_image(images), _reference(tuned, images))
    assert encoder.provenance.source == f"{base} + {source}"
    assert encoder.provenance.sha256.split("+") == [weights_sha256(base), state_sha256(vision)]
    with pytest.raises(BenchError, match=r"has no entry 'vision_state'; its entries: best_acc1, epoch, optimizer, "
                                         r"state_dict, vision_encoder_state_dict; write .*#ONE_OF_THEM"):
        load_encoder(f"{path}#vision_state")


def test_a_key_of_a_file_that_is_a_plain_state_dict_is_one_line(tmp_path):
    path = fx.save_full_pickle(fx.random_model(seed=0), tmp_path / "full.pt")
    with pytest.raises(BenchError, match="has no entry 'model_state'; its entries: .*visual"):
        load_encoder(f"{path}#model_state")
    with pytest.raises(BenchError, match="nothing after '#'"):
        load_encoder(f"{path}#")
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(BenchError, match="is not a dict of entries"):
        load_encoder(f"{tensor}#weights", arch=fx.ARCH)


# --- url: sources with a pinned sha256 --------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture()
def server(tmp_path):
    """A real HTTP server on localhost serving tmp_path/served, stopped by the test when it likes."""
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    httpd.shutdown()
    httpd.server_close()


def test_a_url_downloads_once_is_checked_against_its_pin_and_reads_the_cache_after(server, tmp_path, monkeypatch,
                                                                                   capsys):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    root, base_url, httpd = server
    model = fx.random_model(seed=3)
    path = fx.save_full_safetensors(model, root / "tiny model.safetensors")
    pin = sha256_of(path)
    source = f"url:{base_url}/tiny%20model.safetensors"
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))

    encoder = build_encoder(EncoderSpec(fx.ARCH, source, sha256=pin.upper()), "pinned")
    with torch.no_grad():
        assert torch.equal(encoder.encode_image(images), _reference(model, images))
    assert encoder.provenance.file_sha256 == pin and encoder.provenance.as_dict()["file_sha256"] == pin
    assert encoder.provenance.sha256 == weights_sha256(path) and encoder.provenance.source == source
    cached = next((tmp_path / "home" / "downloads").rglob("*.safetensors"))
    assert cached.read_bytes() == path.read_bytes() and not list(cached.parent.glob("*.part"))

    wrong = "0" * 64
    with pytest.raises(BenchError, match=f"has sha256 {pin}, but the encoder pins {wrong}") as err:
        build_encoder(EncoderSpec(fx.ARCH, source, sha256=wrong), "wrong")
    assert "\n" not in str(err.value) and cached.is_file()  # refused, nothing deleted

    httpd.shutdown()  # every later use reads the cache
    again = build_encoder(EncoderSpec(fx.ARCH, source, sha256=pin), "cached")
    assert again.provenance.sha256 == encoder.provenance.sha256
    capsys.readouterr()
    unpinned = build_encoder(EncoderSpec(fx.ARCH, source), "unpinned")  # allowed: the hash is recorded
    assert unpinned.provenance.file_sha256 == pin
    assert capsys.readouterr() == ("", "")  # and nothing printed about it
    assert load_encoder(source).provenance.file_sha256 == pin  # a url: given on the command line

    cached.write_bytes(cached.read_bytes()[:-1] + b" ")  # changed after its hash was recorded: hashed again
    with pytest.raises(BenchError, match=f"but the encoder pins {pin}"):
        build_encoder(EncoderSpec(fx.ARCH, source, sha256=pin), "changed")


def test_a_url_vision_tower_under_a_key(server, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    root, base_url, _ = server
    base = fx.save_full_safetensors(fx.random_model(seed=1), tmp_path / "base.safetensors")
    tuned = fx.random_model(seed=4)
    torch.save({"vision_encoder_state_dict": tuned.visual.state_dict(), "epoch": 2}, root / "qtaft.pt")
    spec = EncoderSpec(fx.ARCH, str(base), vision=f"url:{base_url}/qtaft.pt#vision_encoder_state_dict",
                       sha256=sha256_of(root / "qtaft.pt"))
    encoder = build_encoder(spec, "qt-aft-tiny")
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(encoder.encode_image(images), _reference(tuned, images))


def test_url_inputs_that_cannot_work_are_one_line(server, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    root, base_url, _ = server
    fx.save_full_safetensors(fx.random_model(seed=0), root / "m.safetensors")
    cases = [
        (EncoderSpec(fx.ARCH, f"url:{base_url}/missing.safetensors"), "cannot download .*HTTP Error 404"),
        (EncoderSpec(fx.ARCH, f"url:{base_url}/m.safetensors", sha256="abc"), "is not a sha256"),
        (EncoderSpec(fx.ARCH, f"url:{base_url}/m.safetensors", sha256=f"{'0' * 64}+{'1' * 64}"),
         "pins 2 sha256 for 1 url: sources"),
        (EncoderSpec(fx.ARCH, "url:ftp://host/m.safetensors"), "write url:https://HOST/PATH/FILE"),
        (EncoderSpec(fx.ARCH, "url:https://host/"), "write url:https://HOST/PATH/FILE"),
    ]
    for spec, message in cases:
        with pytest.raises(BenchError, match=message) as err:
            build_encoder(spec, "x")
        assert "\n" not in str(err.value)
    assert not list((tmp_path / "home").rglob("*.part"))


# --- ConvNeXt towers and other resolutions ----------------------------------------------------


def _save_open_clip(arch: str, path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = open_clip.create_model(arch, pretrained=None).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata={"architecture": arch})
    return path


@pytest.mark.parametrize("arch, size", [("tiny-convnext-test", 32), ("tiny-vit-48-test", 48)])
def test_zero_shot_runs_with_autoattack_on_convnext_and_other_resolutions(tmp_path, capsys, arch, size):
    data = fx.make_image_folder(tmp_path / "shapes", per_class=2)
    model = _save_open_clip(arch, tmp_path / f"{arch}.safetensors")
    assert load_encoder(str(model)).image_size == size
    out = tmp_path / "runs"
    argv = ["run", "--encoder", str(model), "--task", f"folder:{data}", "--attack", "aa", "--eps", "4/255",
            "--steps", "2", "--batch-size", "4", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    (records,) = out.rglob("records.jsonl")
    rows = read_records(records)
    assert len(rows) == 8
    for row in rows:
        assert row["linf"] <= 4 / 255 + 1e-6 and row["robust"] <= row["clean_correct"]
    config = json.loads((records.parent / "config.json").read_text())
    assert config["provenance"]["architecture"] == arch


def test_a_336_px_open_clip_tag_keeps_its_architecture_and_quick_gelu():
    """Nothing assumes 224 px: the tag's architecture sets the size (the 48 px run above shows the path)."""
    from bench.encoders.load import spec_for_source

    spec = spec_for_source("open_clip:ViT-L-14-336/openai")
    assert spec.architecture == "ViT-L-14-336" and spec.quick_gelu
    assert open_clip.get_model_config(spec.architecture)["vision_cfg"]["image_size"] == 336
