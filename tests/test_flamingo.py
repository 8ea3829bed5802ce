"""OpenFlamingo with an encoder swapped in: the open_flamingo package's own model on a tiny
random Llama, a checkpoint read with weights_only=True, a pixel gradient, batched decoding."""
from __future__ import annotations

import copy

import pytest
import torch

from bench.encoders.load import EncoderSpec, build_encoder
from benchutil.errors import BenchError
from tests.vlm_fixtures import make_llama

pytest.importorskip("open_flamingo", reason="pip install --no-deps open_flamingo einops einops-exts")
from bench.vlm.flamingo import build_flamingo  # noqa: E402

PROMPTS = ["<image>Output:", "<image>Question:what color is the circle? Short answer:"]


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("flamingo")
    lang = make_llama(root / "lang")
    encoder = build_encoder(EncoderSpec("tiny-vit-test", "random"), "test")
    trained = build_flamingo(encoder, str(lang), None, 1, "x").flamingo
    with torch.no_grad():  # a recognisable "trained" perceiver and cross-attention
        for name, p in trained.named_parameters():
            if name.endswith("_gate"):  # open gates (they start at 0: the image would not matter)
                p.fill_(1.0)
            elif "perceiver" in name or "gated_cross_attn" in name:
                p.normal_(0, 0.02, generator=torch.Generator().manual_seed(len(name)))
    checkpoint = root / "checkpoint.pt"
    torch.save({k: v for k, v in trained.state_dict().items()}, checkpoint)
    return encoder, lang, checkpoint, trained.state_dict()


@pytest.fixture(scope="module")
def vlm(parts):
    encoder, lang, checkpoint, _ = parts
    return build_flamingo(encoder, str(lang), checkpoint, 1, "open-flamingo-test").eval()


def test_checkpoint_is_loaded_and_the_encoder_swapped_in(vlm, parts):
    encoder, _, checkpoint, state = parts
    loaded = vlm.flamingo.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state if "perceiver" in k or "gated_cross_attn" in k)
    assert vlm.flamingo.vision_encoder.visual is encoder.visual and len(vlm.sha256) == 64


def test_loss_has_a_pixel_gradient_and_batches_like_single_samples(vlm):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0), requires_grad=True)
    loss = vlm.loss(x, PROMPTS, ["a red circle", "red"])
    loss.sum().backward()
    assert loss.shape == (2,) and float(x.grad.abs().sum()) > 0
    single = torch.cat([vlm.loss(x[i : i + 1].detach(), PROMPTS[i : i + 1], [t]) for i, t in enumerate(["a red circle", "red"])])
    torch.testing.assert_close(loss.detach(), single, rtol=1e-4, atol=1e-4)
    # the image matters: another image gives another loss
    assert not torch.allclose(vlm.loss(torch.zeros_like(x), PROMPTS, ["a red circle", "red"]), loss.detach())


def test_generation_runs_batched(vlm):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    texts = vlm.generate(x, PROMPTS, 4)
    assert len(texts) == 2 and texts == [vlm.generate(x[i : i + 1], PROMPTS[i : i + 1], 4)[0] for i in range(2)]


def test_a_broken_checkpoint_is_one_line(parts, tmp_path):
    encoder, lang, _, _ = parts
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(BenchError, match="cannot be read"):
        build_flamingo(encoder, str(lang), bad, 1, "x")


def test_the_vlm_attack_protocol_runs_on_flamingo(vlm):
    from attacks.table import TABLE
    from bench.suites import get_suite, load_task
    from tasks.base import AttackSettings
    from tasks.vlm_attack import attack_batch

    task = load_task(get_suite("tiny"), "tiny-vqa", None)
    ids = task.sample_ids(2, 0)
    records = attack_batch(vlm, task, ids, task.load(ids, vlm.image_size), AttackSettings(TABLE["aa"], 4 / 255, "linf", 2, 0),
                           task.scorer(ids))
    assert [r["id"] for r in records] == ids
    assert all(r["linf"] <= 4 / 255 + 1e-6 and r["adv_score"] <= r["clean_score"] for r in records)


def test_vision_tokens_are_the_last_blocks_patch_outputs_without_ln_post(parts):
    """OpenFlamingo-9B's perceiver was trained on open_clip <= 2.22 tokens: computed by hand
    here the way that VisionTransformer.forward did (no ln_post on the tokens)."""
    from bench.vlm.flamingo import LastPatchTokens

    encoder = parts[0]
    visual = encoder.visual
    pixels = torch.rand(2, 3, encoder.image_size, encoder.image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = visual.conv1(pixels).flatten(2).transpose(1, 2)  # [B, patches, width]
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
        x = visual.transformer(visual.ln_pre(visual.patch_dropout(x)))
        expected = x[:, 1:]
        _, tokens = LastPatchTokens(visual)(pixels)
    assert torch.allclose(tokens, expected, atol=1e-5)
    assert not torch.allclose(tokens, visual.ln_post(expected), atol=1e-3)  # the >= 2.23 tokens differ


def test_the_loss_counts_the_answer_tokens_but_not_endofchunk(vlm):
    """RobustVLM's get_label: everything up to the string's last ':' and <|endofchunk|> are -100
    (checked against a transcription of RobustVLM's code in tests/test_flamingo_reference.py)."""
    x = torch.rand(1, 3, 32, 32)
    _, labels = vlm.target_logits(x, PROMPTS[1:], ["red: circle"])
    counted = labels[labels != -100].tolist()
    assert counted == vlm.tokenizer("red circle", add_special_tokens=False)["input_ids"]  # the colon is removed
    assert vlm.flamingo.eoc_token_id not in counted


def test_another_encoder_reuses_the_loaded_flamingo(vlm):
    other = build_encoder(EncoderSpec("tiny-vit-test", "random"), "other")
    swapped = vlm.with_encoder(other)
    assert swapped.flamingo is vlm.flamingo and swapped.flamingo.vision_encoder.visual is other.visual
    assert swapped.sha256 == vlm.sha256


def test_each_part_is_loaded_in_robustvlms_dtype():
    """RobustVLM casts the whole model, vision encoder included, to float16 (of_eval_model_adv.py
    EvalModelAdv.__init__ with bash/of_eval_9B.sh's --precision float16); CPU keeps float32;
    the bf16 layout is this project's earlier one."""
    from bench.vlm.flamingo import load_dtypes

    half, full, bf16 = torch.float16, torch.float32, torch.bfloat16
    for device in ("cuda", "cuda:1"):
        assert load_dtypes(device) == {"vision_encoder": half, "perceiver": half, "lang_encoder": half}
        assert load_dtypes(device, "bf16") == {"vision_encoder": full, "perceiver": bf16, "lang_encoder": bf16}
    for layout in ("fp16", "bf16"):
        assert load_dtypes("cpu", layout) == {"vision_encoder": full, "perceiver": full, "lang_encoder": full}
    with pytest.raises(ValueError, match="layout"):
        load_dtypes("cuda", "fp8")


@pytest.mark.parametrize(("name", "layout"), [("open-flamingo-9b", "fp16"), ("open-flamingo-9b-bf16", "bf16")])
def test_the_paper_loaders_ask_for_their_layout(monkeypatch, name, layout):
    from bench.vlm import flamingo, paper_vlms
    from bench.vlm.flamingo import load_dtypes

    asked = {}

    class Built:
        def to(self, device):
            asked["device"] = device
            return self

        def eval(self):
            return self

    def build(encoder, lang, checkpoint, every, vlm_name, dtypes):
        asked.update(lang=lang, every=every, dtypes=dtypes)
        return Built()

    monkeypatch.setattr(flamingo, "hub_file", lambda repo, file: f"{repo}/{file}")
    monkeypatch.setattr(flamingo, "build_flamingo", build)
    paper_vlms().get(name).value.load(None, "cuda", name)
    assert asked == {"lang": "anas-awadalla/mpt-7b", "every": 4, "dtypes": load_dtypes("cuda", layout), "device": "cuda"}


@pytest.fixture(scope="module")
def half(parts):
    """The float16 layout (what CUDA loads), built on the CPU."""
    from bench.vlm.flamingo import load_dtypes

    encoder, lang, checkpoint, _ = parts
    return build_flamingo(encoder, str(lang), checkpoint, 1, "open-flamingo-test", load_dtypes("cuda")).eval()


def floating(module: torch.nn.Module) -> list[torch.Tensor]:
    return [t for t in [*module.parameters(), *module.buffers()] if t.is_floating_point()]


def test_the_float16_layout_casts_every_part_but_not_the_shared_encoder(half, parts):
    encoder, _, _, state = parts
    flamingo = half.flamingo
    assert {t.dtype for t in floating(flamingo.lang_encoder)} == {torch.float16}  # gated cross-attention too
    assert {t.dtype for t in floating(flamingo.perceiver)} == {torch.float16}
    assert flamingo.vision_encoder.tower() is flamingo.vision_encoder.low and flamingo.vision_encoder.dtype == torch.float16
    assert {t.dtype for t in floating(encoder)} == {torch.float32} and flamingo.vision_encoder.visual is encoder.visual
    loaded = flamingo.state_dict()  # the checkpoint's weights, rounded once to float16
    assert all(torch.equal(loaded[k], state[k].half()) for k in state if "perceiver" in k or "gated_cross_attn" in k)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0), requires_grad=True)
    loss = half.loss(x, PROMPTS, ["a red circle", "red"])
    loss.sum().backward()
    assert x.grad.dtype == torch.float32 and bool(x.grad.isfinite().all()) and float(x.grad.abs().sum()) > 0
    other = build_encoder(EncoderSpec("tiny-vit-test", "random"), "other")
    assert half.with_encoder(other).flamingo.vision_encoder.dtype == torch.float16
    half.with_encoder(encoder)  # the fixture's own encoder back in


def test_a_half_precision_flamingo_computes_in_float32_inside_the_float32_stage(half):
    """RobustVLM's float32 stage on the float16-loaded Flamingo: inside, the loss is that of the
    same (rounded) language side and perceiver held in float32, around the encoder's own float32
    weights (RobustVLM reloads those; the float16 copy's are rounded); after, the weights are the
    float16 ones, bit for bit."""
    from attacks.precision import float32_weights

    before = {k: v.clone() for k, v in half.flamingo.state_dict().items()}
    up = copy.deepcopy(half).float()  # the same rounded weights (and rotary buffers), held in float32
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with float32_weights(half):
        tokens = half.flamingo.vision_encoder
        assert tokens.tower() is tokens.visual and tokens.dtype == torch.float32
        inside = half.loss(x, PROMPTS, ["a red circle", "red"])
    assert torch.equal(inside, up.loss(x, PROMPTS, ["a red circle", "red"]))
    assert all(torch.equal(half.flamingo.state_dict()[k], v) for k, v in before.items())
    assert half.flamingo.vision_encoder.tower() is half.flamingo.vision_encoder.low
