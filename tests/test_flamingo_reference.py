"""OpenFlamingo's attack loss against RobustVLM's own construction of it.

RobustVLM (github.com/chs20/RobustVLM, commit 7de10ee) attacks, per sample, the string
`context + get_caption_prompt(caption)` / `context + get_vqa_prompt(question, answer)`
(vlm_eval/run_evaluation.py evaluate_captioning / evaluate_vqa), tokenised by
EvalModelAdv.set_inputs, labelled by open_flamingo/eval/models/utils.py get_label and summed
by of_eval_model_adv.py compute_loss. Those functions are transcribed below from reading
them; the tests check that our token ids, label mask and loss are theirs, on two tiny
random Flamingos: the word-level tokenizer of tests/test_flamingo.py, and a byte-level BPE
tokenizer that, like MPT-7B's (GPT-NeoX's), adds no BOS and tells "Output:red" from
"Output: red".
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.encoders.load import EncoderSpec, build_encoder
from tests.vlm_fixtures import make_llama

pytest.importorskip("open_flamingo", reason="pip install --no-deps open_flamingo einops einops-exts")
from bench.vlm.flamingo import FLAMINGO_PROMPTS, build_flamingo

EOC, MEDIA = "<|endofchunk|>", "<image>"


# --- RobustVLM's prompt and label code, transcribed -------------------------------------------
def ref_caption_prompt(caption: str | None = None) -> str:
    """of_eval_model_adv.py get_caption_prompt."""
    if caption is None:
        return f"{MEDIA}Output:"
    return f"{MEDIA}Output:{caption.replace(':', '')}{EOC}"


def ref_vqa_prompt(question: str, answer: str | None = None) -> str:
    """of_eval_model_adv.py get_vqa_prompt."""
    if answer is None:
        return f"{MEDIA}Question:{question} Short answer:"
    return f"{MEDIA}Question:{question} Short answer:{answer.replace(':', '')}{EOC}"


def ref_attacked_text(task, sample_id: str, target: str, style) -> str:
    """run_evaluation.py: the demonstrations' prompts joined, <image> removed from them (0 shots),
    then the query's prompt with the attacked string. The demonstrations are the sample's own
    (our seeded draw: the one documented difference, tests/test_demonstrations.py)."""
    demos = task.demonstrations_for(sample_id, style)
    if task.kind == "captioning":
        context = "".join(ref_caption_prompt(caption.strip()) for caption in demos)
        return context.replace(MEDIA, "") + ref_caption_prompt(target)
    context = "".join(ref_vqa_prompt(question, answer) for question, answer in demos)
    return context.replace(MEDIA, "") + ref_vqa_prompt(task.items[sample_id].question, target)


def ref_set_inputs(tokenizer, texts: list[str]):
    """EvalModelAdv.set_inputs: one call on the batch, longest padding (on the left, as set in
    __init__), truncation at 2000 tokens."""
    tokenizer.padding_side = "left"
    return tokenizer(texts, padding="longest", truncation=True, max_length=2000, return_tensors="pt")


def ref_get_label(lang_x: torch.Tensor, tokenizer) -> torch.Tensor:
    """models/utils.py get_label, mode "colon". (The special ids are looked up with
    convert_tokens_to_ids: transformers 5 dropped `additional_special_tokens`, which the
    original indexes; the ids are the same.)"""
    colon = tokenizer.encode(":")[0]
    eoc, media = tokenizer.convert_tokens_to_ids(EOC), tokenizer.convert_tokens_to_ids(MEDIA)
    label = lang_x.clone()
    for i in range(len(label)):
        last_colon = (label[i] == colon).nonzero().flatten()[-1].item()
        label[i, : last_colon + 1] = -100
    label[label == tokenizer.pad_token_id] = -100
    label[:, 0] = -100
    label[label == media] = -100
    label[label == eoc] = -100
    return label


def ref_compute_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """of_eval_model_adv.py compute_loss: labels rolled one to the left (flattened, as torch.roll
    without dims does), the last column dropped, per-token cross-entropy summed per row."""
    labels = torch.roll(labels, shifts=-1)
    labels[:, -1] = -100
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
    return ce.view(logits.shape[0], -1).sum(-1)
# ---------------------------------------------------------------------------------------------


def byte_level_lang(path: Path, corpus: list[str]) -> Path:
    """A tiny random Llama with a byte-level BPE tokenizer trained on `corpus` (no BOS, spaces
    are part of the tokens, ':' a token of its own before a letter: as GPT-NeoX's)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                        unk_token="<|endoftext|>")
    tokenizer.save_pretrained(str(path))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(path))
    return path


def tasks():
    from bench.suites import get_suite, load_task

    return [load_task(get_suite("tiny"), name, None) for name in ("tiny-captions", "tiny-vqa")]


@pytest.fixture(scope="module", params=["word-level", "byte-level"])
def vlm(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"flamingo-{request.param}")
    if request.param == "word-level":
        lang = make_llama(root / "lang")
    else:
        corpus = []
        for task in tasks():
            ids = task.sample_ids(40, 0)
            corpus += [s for refs in task.attack_targets(ids) for s in refs] + task.prompts(ids, FLAMINGO_PROMPTS)
        lang = byte_level_lang(root / "lang", corpus * 3)
    encoder = build_encoder(EncoderSpec("tiny-vit-test", "random"), "test")
    vlm = build_flamingo(encoder, str(lang), None, 1, f"open-flamingo-{request.param}").eval()
    with torch.no_grad():  # open gates and a random perceiver / cross-attention: the image matters
        for name, p in vlm.flamingo.named_parameters():
            if name.endswith("_gate"):
                p.fill_(1.0)
            elif "perceiver" in name or "gated_cross_attn" in name:
                p.normal_(0, 0.02, generator=torch.Generator().manual_seed(len(name)))
    vlm.flavour = request.param
    return vlm


def cases(task, vlm, n: int = 3) -> tuple[list[str], list[str], list[str]]:
    """(ids, prompts, targets): each sample's first attack string, and strings with colons, a
    leading space and an empty one, as RobustVLM's passes and --target can hand them over."""
    ids = task.sample_ids(n, 0)
    extra = ["one shape: a circle.", " red", ""] if task.kind == "captioning" else ["2: two", " red", "maybe"]
    targets = [refs[0] for refs in task.attack_targets(ids)] + extra
    ids = ids + [ids[0]] * len(extra)
    return ids, task.prompts(ids, vlm.prompts), targets


@pytest.mark.parametrize("task", tasks(), ids=lambda t: t.name)
def test_token_ids_and_label_mask_are_robustvlms(vlm, task):
    ids, prompts, targets = cases(task, vlm)
    texts = [ref_attacked_text(task, i, t, vlm.prompts) for i, t in zip(ids, targets)]
    reference = ref_set_inputs(vlm.tokenizer, texts)
    ours, mask, labels = vlm.attacked_tokens(prompts, targets)
    assert torch.equal(ours, reference["input_ids"]) and torch.equal(mask, reference["attention_mask"])
    assert torch.equal(labels, ref_get_label(reference["input_ids"], vlm.tokenizer))
    if vlm.flavour == "byte-level":  # the counted tokens are exactly the attacked string, colons removed
        counted = [vlm.tokenizer.decode(row[row != -100]) for row in labels]
        assert counted == [t.replace(":", "") for t in targets]
        # this tokenizer tells the earlier construction (prompt and ' ' + target tokenised apart) from it
        tok, eoc = vlm.tokenizer, vlm.tokenizer.convert_tokens_to_ids(EOC)
        earlier = tok(prompts[0])["input_ids"] + tok(" " + targets[0], add_special_tokens=False)["input_ids"] + [eoc]
        assert earlier != [t for t, m in zip(ours[0].tolist(), mask[0].tolist()) if m]


# The package's own Flamingo.forward (the reference's path) passes past_key_values, which
# transformers 5 deprecates; our own forward does not.
@pytest.mark.filterwarnings("ignore:`past_key_values` is deprecated:FutureWarning")
@pytest.mark.parametrize("task", tasks(), ids=lambda t: t.name)
def test_the_loss_is_robustvlms_sum_over_those_tokens_per_token(vlm, task):
    """Batch size 1, as RobustVLM runs: the package's own Flamingo.forward on RobustVLM's tokens,
    compute_loss's sum; ours is that sum over the number of counted tokens. Batched, each row
    gives its single-sample loss."""
    ids, prompts, targets = cases(task, vlm)
    images = torch.rand(len(ids), 3, 32, 32, generator=torch.Generator().manual_seed(3))
    ours = vlm.loss(images, prompts, targets)
    for k, (i, target) in enumerate(zip(ids, targets)):
        batch = ref_set_inputs(vlm.tokenizer, [ref_attacked_text(task, i, target, vlm.prompts)])
        labels = ref_get_label(batch["input_ids"], vlm.tokenizer)
        pixels = (images[k : k + 1] - vlm.encoder.mean) / vlm.encoder.std
        with torch.no_grad():
            logits = vlm.flamingo(vision_x=pixels[:, None, None], lang_x=batch["input_ids"],
                                  attention_mask=batch["attention_mask"].bool()).logits
        total = ref_compute_loss(logits, labels)
        count = int((labels != -100).sum())
        expected = total / max(count, 1)
        torch.testing.assert_close(vlm.loss(images[k : k + 1], prompts[k : k + 1], [target]), expected,
                                   rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ours[k : k + 1], expected, rtol=1e-4, atol=1e-5)
    assert bool((ours > 0).any())
