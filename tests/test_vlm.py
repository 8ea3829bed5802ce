"""VLMs: the projected-VLM core (batching, gradients, greedy decoding), LLaVA's loader with
an encoder swapped in, and the shipped tiny-llava."""
from __future__ import annotations

import pytest
import torch

from bench.encoders.load import EncoderSpec, build_encoder
from bench.vlm import load_vlm, paper_vlms, tiny_vlms
from bench.vlm.llava import VICUNA_V1_SYSTEM
from bench.vlm.tiny_llava import assemble, build_parts, codec
from benchutil.errors import BenchError
from tests.vlm_fixtures import make_llava

PROMPTS = ["describe the image", "how many shapes are there?", "what color is the circle?"]
TARGETS = ["a red circle", "2", "blue"]


@pytest.fixture(scope="module")
def tiny_encoder():
    from bench import load_encoder

    return load_encoder("clip", "tiny").eval()


@pytest.fixture(scope="module")
def random_tiny_vlm(tiny_encoder):
    projector, lm = build_parts(96, seed=0)
    return assemble(tiny_encoder, projector, lm).eval()


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory):
    return make_llava(tmp_path_factory.mktemp("llava"))


def test_batched_loss_and_generation_equal_one_at_a_time(random_tiny_vlm):
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    batched = random_tiny_vlm.loss(x, PROMPTS, TARGETS)
    single = torch.cat([random_tiny_vlm.loss(x[i : i + 1], PROMPTS[i : i + 1], TARGETS[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-5)
    texts = random_tiny_vlm.generate(x, PROMPTS, 6)
    assert texts == [random_tiny_vlm.generate(x[i : i + 1], PROMPTS[i : i + 1], 6)[0] for i in range(3)]


def test_greedy_decoding_takes_the_most_likely_token(random_tiny_vlm):
    """The loss and the decoder agree: the first generated token minimises the one-token loss."""
    words = codec()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    first = torch.stack([random_tiny_vlm.loss_ids(x, PROMPTS[:1], [[w]])[0] for w in range(words.vocab_size)])
    text = random_tiny_vlm.generate(x, PROMPTS[:1], 5)[0]
    expected = words.encode(text)[0] if text else words.eos_id
    assert int(first.argmin()) == expected


def test_loss_has_a_pixel_gradient_and_no_parameter_gradient_in_attack_mode(random_tiny_vlm):
    from attacks.core import attack_mode

    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    with attack_mode(random_tiny_vlm):
        random_tiny_vlm.loss(x, PROMPTS[:2], TARGETS[:2]).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(p.grad is None for p in random_tiny_vlm.parameters())


def test_wrong_image_shape_is_one_line(random_tiny_vlm):
    with pytest.raises(BenchError, match=r"images \[N, 3, 64, 64\]"):
        random_tiny_vlm.loss(torch.rand(1, 3, 32, 32), PROMPTS[:1], TARGETS[:1])


def test_llava_loads_with_the_encoder_swapped_in(llava_dir):
    """llava-hf classes and files: the 336 px tower is dropped, open_clip's tokens go to LLaVA's projector."""
    encoder = build_encoder(EncoderSpec("tiny-vit-test", "random"), "test")
    vlm = load_vlm(f"llava:{llava_dir}", paper_vlms(), encoder, "cpu")
    assert vlm.lm.model.vision_tower is None
    assert vlm.projector is vlm.lm.model.multi_modal_projector
    assert len(vlm.sha256) == 64
    before, after = vlm.frame("what color is the circle?")
    tokenizer = vlm.codec.tokenizer
    # RobustVLM's vicuna_v1 prompt '<system> USER: <image>\n<prompt> ASSISTANT:', split at the image
    # and each side tokenised on its own (LLaVA's tokenizer_image_token)
    prompt = f"{VICUNA_V1_SYSTEM} USER: <image>\nwhat color is the circle? ASSISTANT:"
    head, tail = prompt.split("<image>")
    assert before == [tokenizer.bos_token_id, *tokenizer(head, add_special_tokens=False)["input_ids"]]
    assert after == tokenizer(tail, add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(before)[-2:] == ["USER", ":"]
    assert tokenizer.convert_ids_to_tokens(after)[-2:] == ["ASSISTANT", ":"]
    assert vlm.pad_colour == (122, 116, 104)  # LLaVA pads with CLIP's mean colour
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    loss = vlm.loss(x, ["what color is the circle?", "Provide a short caption for this image."], ["red", "a red circle"])
    loss.sum().backward()
    assert loss.shape == (2,) and float(x.grad.abs().sum()) > 0
    texts = vlm.generate(x.detach(), ["what color?", "caption"], 4)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    # 16 patch tokens of the penultimate block reach the LM (32 px / patch 8)
    assert vlm._n_image(x) == 16


def test_llava_errors_are_one_line(tmp_path):
    encoder = build_encoder(EncoderSpec("tiny-vit-test", "random"), "test")
    with pytest.raises(BenchError, match="no config.json"):
        load_vlm(f"llava:{tmp_path}", paper_vlms(), encoder, "cpu")
    with pytest.raises(BenchError, match="Hugging Face hub"):
        load_vlm("llava:nobody/no-such-llava", paper_vlms(), encoder, "cpu")


def test_encoder_of_another_width_is_refused(llava_dir, tiny_encoder):
    with pytest.raises(BenchError, match="96-dim patch tokens but the VLM's projector takes 64"):
        load_vlm(f"llava:{llava_dir}", paper_vlms(), tiny_encoder, "cpu")


def test_unknown_vlm_suggests_the_closest():
    with pytest.raises(BenchError, match="tiny-llava"):
        tiny_vlms().get("tiny-lava")


def test_tiny_target_words_are_checked():
    codec().check("please reset your password", "--target")
    with pytest.raises(BenchError, match="bitcoin"):
        codec().check("buy bitcoin", "--target")


def test_llava_images_are_padded_to_a_square_not_cropped(tmp_path):
    from PIL import Image

    from tasks.imagefolder import load_image

    wide = Image.new("RGB", (80, 40), (255, 0, 0))
    wide.save(tmp_path / "wide.png")
    padded = load_image(tmp_path / "wide.png", 32, pad_colour=(122, 116, 104))
    cropped = load_image(tmp_path / "wide.png", 32)
    assert padded.shape == cropped.shape == (3, 32, 32)
    assert torch.allclose(padded[:, 0, 16], torch.tensor([122, 116, 104]) / 255, atol=1e-6)  # the band above
    assert torch.allclose(padded[:, 16, 16], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)  # the image in the middle
    assert torch.allclose(cropped[:, 0, 16], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)  # cropping keeps red only


def test_the_loss_reads_only_the_targets_logits_and_equals_the_full_computation(random_tiny_vlm):
    """The LM computes logits for the target positions only; the loss is bit-identical to the
    one from every position's logits (the committed tiny VLM cells depend on it)."""
    from tasks.token_losses import mean_token_ce, mean_token_margin

    vlm = random_tiny_vlm
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    logits, labels = vlm.target_logits(x, PROMPTS, TARGETS)
    assert logits.shape[1] < labels.shape[1]  # the prompt's positions were never computed
    ids = [[*vlm.codec.encode(t), vlm.codec.eos_id] for t in TARGETS]
    layout = vlm._device(vlm._layout(PROMPTS, vlm._n_image(x), ids), x.device)
    full = vlm.lm(inputs_embeds=vlm._embed(x, layout), attention_mask=layout["mask"], position_ids=layout["positions"],
                  use_cache=False).logits[:, :-1]
    assert full.shape[1] == labels.shape[1]
    assert torch.equal(mean_token_ce(logits, labels), mean_token_ce(full, labels))
    assert torch.equal(mean_token_margin(logits, labels), mean_token_margin(full, labels))


def test_token_losses_refuse_logits_that_miss_a_labelled_token():
    from tasks.token_losses import mean_token_ce

    labels = torch.tensor([[-100, 3, 4, -100]])
    with pytest.raises(ValueError, match="labelled tokens start earlier"):
        mean_token_ce(torch.zeros(1, 2, 8), labels)
