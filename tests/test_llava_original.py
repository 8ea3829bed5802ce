"""LLaVA checkpoints in haotian-liu/LLaVA's own format (merged, and LoRA over a base Llama), loaded
through `--vlm llava:...` and checked against the reference way of loading them: peft's
merge_and_unload on the base plus the non-LoRA weights (llava/model/builder.py,
load_pretrained_model). Also LLaVA's native 336 px path: the token count follows the encoder."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from bench.encoders.load import EncoderSpec, build_encoder
from bench.vlm import load_vlm, paper_vlms
from benchutil.errors import BenchError
from tests.vlm_fixtures import make_llama, make_llava

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RANK, ALPHA = 4, 8
PROMPTS = ["what color is the circle?", "Provide a short caption for this image."]
TARGETS = ["red", "a red circle"]


def llava_config(base: Path, **changes) -> dict:
    """config.json as LLaVA-1.5's training writes it: the Llama's keys plus the mm_* ones."""
    config = json.loads((base / "config.json").read_text())
    return {**config, "model_type": "llava_llama", "architectures": ["LlavaLlamaForCausalLM"],
            "mm_hidden_size": 64, "mm_projector_type": "mlp2x_gelu",
            "mm_vision_tower": "openai/clip-vit-large-patch14-336",
            "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch", "mm_use_im_start_end": False,
            "mm_use_im_patch_token": False, "mm_patch_merge_type": "flat", "image_aspect_ratio": "pad",
            "use_mm_proj": True, "tune_mm_mlp_adapter": False, **changes}


def reference_projector(seed: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 64)).eval()


def write_lora(base: Path, out: Path) -> Path:
    """LLaVA's LoRA output folder: config.json, peft's adapter files, non_lora_trainables.bin
    (projector under base_model.model.model.mm_projector, plus a vision-tower tensor to drop)."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    lm = LlamaForCausalLM.from_pretrained(str(base))
    model = get_peft_model(lm, LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=LORA_TARGETS, lora_dropout=0.05,
                                          task_type="CAUSAL_LM"))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # peft starts B at zero (a no-op adapter); a trained one is not
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    model.save_pretrained(str(out))
    (out / "config.json").write_text(json.dumps(llava_config(base)))
    non_lora = {f"base_model.model.model.mm_projector.{k}": v for k, v in reference_projector().state_dict().items()}
    non_lora["base_model.model.model.vision_tower.vision_tower.vision_model.post_layernorm.weight"] = torch.ones(64)
    torch.save(non_lora, out / "non_lora_trainables.bin")
    return out


def write_merged(base: Path, lora: Path, out: Path) -> Path:
    """The merged form, merged by hand (W + alpha/r * B A on every target Linear) from the
    adapter file: pytorch_model.bin with Llama's keys, model.mm_projector.* and a vision-tower key."""
    from transformers import LlamaForCausalLM

    out.mkdir()
    state = LlamaForCausalLM.from_pretrained(str(base)).state_dict()
    adapter = load_file(str(lora / "adapter_model.safetensors"))
    merged = 0
    for key in list(state):
        a = adapter.get("base_model.model." + key.replace(".weight", ".lora_A.weight"))
        if a is not None:
            b = adapter["base_model.model." + key.replace(".weight", ".lora_B.weight")]
            state[key] = state[key] + (ALPHA / RANK) * b @ a
            merged += 1
    assert merged == 2 * len(LORA_TARGETS)  # 2 layers
    state |= {f"model.mm_projector.{k}": v for k, v in reference_projector().state_dict().items()}
    state["model.vision_tower.vision_tower.vision_model.post_layernorm.weight"] = torch.ones(64)
    torch.save(state, out / "pytorch_model.bin")
    (out / "config.json").write_text(json.dumps(llava_config(base)))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (base / name).is_file():
            shutil.copy(base / name, out / name)
    return out


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("llava-original")
    base = make_llama(root / "vicuna", seed=0)
    lora = write_lora(base, root / "lora")
    return {"base": base, "lora": lora, "merged": write_merged(base, lora, root / "merged")}


@pytest.fixture(scope="module")
def reference_lm(checkpoints):
    """builder.py's way: the base, then PeftModel.from_pretrained + merge_and_unload."""
    from peft import PeftModel
    from transformers import LlamaForCausalLM

    base = LlamaForCausalLM.from_pretrained(str(checkpoints["base"]))
    return PeftModel.from_pretrained(base, str(checkpoints["lora"])).merge_and_unload().eval()


@pytest.fixture(scope="module")
def encoder_336():
    """The 336 px stand-in: tiny-vit-test's tower at 48 px (6x6 patches instead of 4x4)."""
    return build_encoder(EncoderSpec("tiny-vit-48-test", "random"), "test-336").eval()


@pytest.fixture(scope="module")
def vlms(checkpoints, encoder_336):
    lora, base = checkpoints["lora"], checkpoints["base"]
    return {"lora": load_vlm(f"llava:{lora}@{base}", paper_vlms(), encoder_336, "cpu"),
            "merged": load_vlm(f"llava:{checkpoints['merged']}", paper_vlms(), encoder_336, "cpu")}


def test_both_forms_equal_the_peft_merge(checkpoints, reference_lm, vlms):
    embeds = torch.randn(2, 7, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = reference_lm(inputs_embeds=embeds).logits
        from transformers import LlamaForCausalLM

        unmerged = LlamaForCausalLM.from_pretrained(str(checkpoints["base"]))(inputs_embeds=embeds).logits
        assert (expected - unmerged).abs().max() > 1e-3  # the adapter changes the model: the comparison can fail
        for form, vlm in vlms.items():
            torch.testing.assert_close(vlm.lm(inputs_embeds=embeds).logits, expected, atol=1e-5, rtol=0, msg=form)
            feats = torch.randn(2, 5, 64, generator=torch.Generator().manual_seed(6))
            torch.testing.assert_close(vlm.projector(feats), reference_projector()(feats), atol=0, rtol=0, msg=form)


def test_forms_give_the_same_vlm_at_336(vlms, encoder_336):
    """At the encoder's 336 px stand-in the VLM takes 6x6 = 36 tokens (LLaVA-1.5's 336 px /14:
    24x24 = 576); loss, gradient and generation agree between the merged and LoRA forms."""
    lora, merged = vlms["lora"], vlms["merged"]
    assert lora.image_size == merged.image_size == 48
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(7))
    assert lora._n_image(x) == 36 and lora.image_tokens(x).shape == (2, 36, 64)
    losses = {}
    for form, vlm in vlms.items():
        pixels = x.clone().requires_grad_(True)
        losses[form] = vlm.loss(pixels, PROMPTS, TARGETS)
        losses[form].sum().backward()
        assert pixels.grad is not None and float(pixels.grad.abs().sum()) > 0
    torch.testing.assert_close(losses["lora"], losses["merged"], atol=1e-5, rtol=0)
    assert lora.generate(x, PROMPTS, 5) == merged.generate(x, PROMPTS, 5)
    assert lora.pad_colour == merged.pad_colour == (122, 116, 104)  # image_aspect_ratio "pad"


def test_the_token_count_follows_the_encoder(vlms):
    """The same checkpoint around the 32 px encoder: 16 tokens, as RobustVLM's 224 px swap gives 256."""
    small = vlms["merged"].with_encoder(build_encoder(EncoderSpec("tiny-vit-test", "random"), "test"))
    x = torch.rand(1, 3, 32, 32)
    assert small._n_image(x) == 16 and small.loss(x, PROMPTS[:1], TARGETS[:1]).shape == (1,)
    with pytest.raises(BenchError, match=r"images \[N, 3, 48, 48\]"):
        vlms["merged"].loss(x, PROMPTS[:1], TARGETS[:1])


def test_images_are_padded_and_loaded_at_the_encoders_size(vlms, tmp_path):
    from PIL import Image

    from tasks.imagefolder import load_image

    Image.new("RGB", (120, 60), (0, 0, 255)).save(tmp_path / "wide.png")
    vlm = vlms["lora"]
    image = load_image(tmp_path / "wide.png", vlm.image_size, pad_colour=vlm.pad_colour)
    assert image.shape == (3, 48, 48)
    assert torch.allclose(image[:, 2, 24], torch.tensor([122, 116, 104]) / 255, atol=1e-6)  # the band above
    assert torch.allclose(image[:, 24, 24], torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)
    assert vlm.generate(image[None], PROMPTS[:1], 3)[0] == vlms["merged"].generate(image[None], PROMPTS[:1], 3)[0]


def test_the_base_defaults_to_the_adapters_and_the_identity_covers_both(checkpoints, vlms, encoder_336):
    """adapter_config.json's base_model_name_or_path (here the base folder) is used without '@'."""
    vlm = load_vlm(f"llava:{checkpoints['lora']}", paper_vlms(), encoder_336, "cpu")
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(vlm.loss(x, PROMPTS[:1], TARGETS[:1]), vlms["lora"].loss(x, PROMPTS[:1], TARGETS[:1]),
                               atol=0, rtol=0)
    assert len(vlm.sha256) == 64 and vlm.sha256 == vlms["lora"].sha256 != vlms["merged"].sha256


def _reshard(merged: Path, out: Path, layout: str) -> Path:
    """The merged checkpoint as model.safetensors, or as two .bin shards with an index (the
    projector in the second, as LLaVA-1.5's own upload holds it)."""
    from safetensors.torch import save_file

    shutil.copytree(merged, out, ignore=shutil.ignore_patterns("pytorch_model.bin"))
    state = torch.load(merged / "pytorch_model.bin", weights_only=True)
    if layout == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(out / "model.safetensors"))
        return out
    names = {k: "pytorch_model-00001-of-00002.bin" if ".layers." in k else "pytorch_model-00002-of-00002.bin"
             for k in state}
    for shard in set(names.values()):
        torch.save({k: v for k, v in state.items() if names[k] == shard}, out / shard)
    (out / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": names}))
    return out


@pytest.mark.parametrize("layout", ["safetensors", "sharded-bin"])
def test_merged_weights_in_any_layout_load_the_same(checkpoints, vlms, encoder_336, tmp_path, layout):
    vlm = load_vlm(f"llava:{_reshard(checkpoints['merged'], tmp_path / layout, layout)}", paper_vlms(),
                   encoder_336, "cpu")
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(vlm.loss(x, PROMPTS, TARGETS), vlms["merged"].loss(x, PROMPTS, TARGETS), atol=0, rtol=0)


def _copy(src: Path, dst: Path, drop: str | None = None) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(drop) if drop else None)
    return dst


def _one_line(call) -> str:
    with pytest.raises(BenchError) as err:
        call()
    assert "\n" not in str(err.value)
    return str(err.value)


def test_bad_inputs_are_one_line(checkpoints, encoder_336, tmp_path):
    lora, base, merged = checkpoints["lora"], checkpoints["base"], checkpoints["merged"]

    def load(source: str):
        return lambda: load_vlm(f"llava:{source}", paper_vlms(), encoder_336, "cpu")

    no_non_lora = _copy(lora, tmp_path / "no-non-lora", "non_lora_trainables.bin")
    assert "has no non_lora_trainables.bin" in _one_line(load(f"{no_non_lora}@{base}"))
    no_base = _copy(lora, tmp_path / "no-base")
    adapter = json.loads((no_base / "adapter_config.json").read_text())
    (no_base / "adapter_config.json").write_text(json.dumps({**adapter, "base_model_name_or_path": None}))
    assert f"pass it as llava:{no_base}@BASE" in _one_line(load(str(no_base)))
    assert "base model /no/such/vicuna is not a model folder" in _one_line(load(f"{lora}@/no/such/vicuna"))
    assert "cannot get base model nobody/no-such-vicuna from the Hugging Face hub" in _one_line(
        load(f"{lora}@nobody/no-such-vicuna"))
    assert "has no config.json" in _one_line(load(f"{lora}@{tmp_path}"))
    assert "only LoRA checkpoints take '@BASE'" in _one_line(load(f"{merged}@{base}"))
    assert "give both sides of '@'" in _one_line(load(f"{lora}@"))
    llava_hf = make_llava(tmp_path / "llava-hf")
    assert "is a llava-hf checkpoint; only LoRA checkpoints take '@BASE'" in _one_line(load(f"{llava_hf}@{base}"))
    unpadded = _copy(merged, tmp_path / "anyres")
    (unpadded / "config.json").write_text(json.dumps(llava_config(base, mm_patch_merge_type="spatial_unpad")))
    assert "mm_patch_merge_type='spatial_unpad'" in _one_line(load(str(unpadded)))
    linear = _copy(merged, tmp_path / "linear")
    (linear / "config.json").write_text(json.dumps(llava_config(base, mm_projector_type="linear")))
    assert "do not fit mm_projector_type 'linear'" in _one_line(load(str(linear)))
    # an encoder whose width is not mm_hidden_size
    assert "projector takes 64" in _one_line(
        lambda: load_vlm(f"llava:{merged}", paper_vlms(), _wide_encoder(), "cpu"))


def _wide_encoder() -> nn.Module:
    from bench import load_encoder

    return load_encoder("clip", "tiny").eval()  # the tiny suite's CLIP: 96-dim tokens


def test_delta2_llava_is_registered_and_offline_is_one_line(encoder_336):
    for eps in (4, 8):
        entry = paper_vlms().get(f"delta2-llava-{eps}")
        assert "576 tokens" in entry.provenance and f"{eps}/255" in entry.provenance
        message = _one_line(lambda: load_vlm(f"delta2-llava-{eps}", paper_vlms(), encoder_336, "cpu"))
        assert f"zw123/delta2_llava_{eps}_v1_5_7b" in message
    assert paper_vlms().get("delta2-llava").name == "delta2-llava-4"


def test_bench_run_takes_a_lora_checkpoint_with_its_base(checkpoints, tmp_path, capsys):
    """`bench run --vlm llava:LORA@BASE` end to end on the tiny suite, at the 336 px stand-in."""
    import open_clip
    from safetensors.torch import save_file

    from bench.cli.main import main

    torch.manual_seed(0)
    model = open_clip.create_model("tiny-vit-48-test", pretrained=None)
    encoder = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(encoder),
              metadata={"architecture": "tiny-vit-48-test"})
    vlm = f"llava:{checkpoints['lora']}@{checkpoints['base']}"
    out = tmp_path / "runs"
    assert main(["run", "--suite", "tiny", "--encoder", str(encoder), "--task", "tiny-vqa", "--vlm", vlm,
                 "--n-samples", "2", "--eps", "0", "--out", str(out)]) == 0
    (config,) = [json.loads(p.read_text()) for p in out.rglob("config.json")]
    assert config["vlm"] == vlm and len(config["vlm_sha256"]) == 64
    assert config["load_options"] == {"pad_colour": [122, 116, 104]}
    records = [json.loads(line) for line in next(out.rglob("records.jsonl")).read_text().splitlines()]
    assert len(records) == 2 and all(isinstance(r["clean_output"], str) for r in records)
    capsys.readouterr()
    assert main(["run", "--suite", "tiny", "--encoder", str(encoder), "--task", "tiny-vqa", "--vlm",
                 f"llava:{checkpoints['lora']}@", "--n-samples", "2", "--eps", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "give both sides of '@'" in err, err


def _with_tuned_tower(lora: Path, out: Path, tower: dict[str, torch.Tensor], unfreeze: bool = True) -> Path:
    """The LoRA folder as Open-LLaVA-NeXT's --unfreeze_mm_vision_tower training writes it: the tuned
    open_clip tower (`.visual`) in non_lora_trainables.bin, the flag in config.json."""
    folder = _copy(lora, out)
    non_lora = torch.load(folder / "non_lora_trainables.bin", weights_only=True)
    non_lora = {k: v for k, v in non_lora.items() if ".vision_tower." not in k}
    non_lora |= {f"base_model.model.model.vision_tower.vision_tower.{k}": v for k, v in tower.items()}
    torch.save(non_lora, folder / "non_lora_trainables.bin")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "unfreeze_mm_vision_tower": unfreeze}))
    return folder


def test_a_tower_tuned_with_the_llm_runs_in_a_copy_of_the_encoder(checkpoints, encoder_336, vlms, tmp_path):
    """Δ²LLaVA trains its vision tower too: the builder runs the checkpoint's tower, so must we, in a
    copy (the encoder the command evaluates elsewhere stays as it is); without the config flag the
    builder reloads the pretrained tower and the saved one is ignored, as here."""
    before = {k: v.clone() for k, v in encoder_336.clip.visual.state_dict().items()}
    tuned = {k: v + 0.01 * torch.randn(v.shape, generator=torch.Generator().manual_seed(7)) if v.is_floating_point()
             else v for k, v in before.items()}
    base = checkpoints["base"]
    folder = _with_tuned_tower(checkpoints["lora"], tmp_path / "tuned", tuned)
    vlm = load_vlm(f"llava:{folder}@{base}", paper_vlms(), encoder_336, "cpu")
    assert all(torch.equal(vlm.encoder.clip.visual.state_dict()[k], tuned[k]) for k in tuned)
    assert all(torch.equal(encoder_336.clip.visual.state_dict()[k], before[k]) for k in before)
    assert vlm.encoder.provenance.sha256 != encoder_336.provenance.sha256 and vlm.tower_source == str(folder)
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert not torch.allclose(vlm.image_tokens(x), vlms["lora"].image_tokens(x))
    other = vlm.with_encoder(encoder_336)  # the next encoder of a command gets the tuned tower too
    assert all(torch.equal(other.encoder.clip.visual.state_dict()[k], tuned[k]) for k in tuned)
    ignored = _with_tuned_tower(checkpoints["lora"], tmp_path / "frozen", tuned, unfreeze=False)
    plain = load_vlm(f"llava:{ignored}@{base}", paper_vlms(), encoder_336, "cpu")
    assert plain.tower_state is None and plain.encoder is encoder_336
    transformers_tower = _with_tuned_tower(checkpoints["lora"], tmp_path / "hf-tower",
                                           {"vision_model.post_layernorm.weight": torch.ones(64)})
    assert "transformers CLIP vision tower" in _one_line(
        lambda: load_vlm(f"llava:{transformers_tower}@{base}", paper_vlms(), encoder_336, "cpu"))
