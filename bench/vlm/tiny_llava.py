"""tiny-llava: the tiny CLIP's patch tokens -> a 2-layer MLP projector -> a small Llama.

Same recipe as LLaVA-1.5 at a scale a CPU trains in minutes: frozen vision tower, MLP
projector, causal LM; trained by `bench train --suite tiny --method vlm` and shipped in
bench/tiny/weights (projector + LM only; the vision tower is whichever encoder is loaded).
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from bench.encoders.weights import save_safetensors, weights_sha256
from bench.tiny import WEIGHTS as TINY_WEIGHTS
from bench.tiny.tokenizer import vocabulary
from bench.vlm.projected import ProjectedVLM, Prompts
from bench.vlm.registry import register_vlm
from bench.vlm.text import WordCodec
from benchutil.errors import BenchError

# Words the tiny world never says but attacks and prompts need: the papers' target
# strings, RobustVLM's VQA targets ("maybe", "Word") and the captioning instruction.
EXTRA_WORDS = """describe please reset your password investing in this new cryptocurrency will guarantee
benefit within month maybe word not sure""".split()
# Every VQA dataset is asked with the bare question (no dataset_questions): the tiny words hold no
# instruction, so answering tiny-vizwiz's "unanswerable" is learnt from its training split.
PROMPTS = Prompts(caption="describe the image", question="{question}", caption_tokens=24, answer_tokens=4)
LM_CONFIG = {"hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 4, "max_position_embeddings": 160, "rms_norm_eps": 1e-5,
             "tie_word_embeddings": False, "attention_dropout": 0.0}


def codec() -> WordCodec:
    """The tiny CLIP's words, EXTRA_WORDS, and the words only the tiny VizWiz, OK-VQA, POPE and
    ScienceQA write (each module's NEW_WORDS)."""
    from bench.tiny import knowledge, pope_scienceqa, unanswerable

    words = [w for w in vocabulary() if not w.startswith("<")]
    return WordCodec([*words, *EXTRA_WORDS, *unanswerable.NEW_WORDS, *knowledge.NEW_WORDS,
                      *pope_scienceqa.NEW_WORDS])


def build_parts(vision_width: int, seed: int) -> tuple[nn.Module, nn.Module]:
    """(projector, language model), randomly initialised from `seed`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    words = codec()
    torch.manual_seed(seed)  # transformers initialises from the global generator
    config = LlamaConfig(vocab_size=words.vocab_size, pad_token_id=words.pad_id, bos_token_id=words.bos_id,
                         eos_token_id=words.eos_id, **LM_CONFIG)
    lm = LlamaForCausalLM(config)
    hidden = LM_CONFIG["hidden_size"]
    projector = nn.Sequential(nn.Linear(vision_width, hidden), nn.GELU(), nn.Linear(hidden, hidden))
    return projector, lm


def assemble(encoder: nn.Module, projector: nn.Module, lm: nn.Module, name: str = "tiny-llava") -> ProjectedVLM:
    words = codec()

    def frame(prompt: str) -> tuple[list[int], list[int]]:
        return [words.bos_id], [*words.encode(prompt), words.sep_id]

    return ProjectedVLM(encoder, projector, lm, words, frame, PROMPTS, name)


def save_parts(path: Path, projector: nn.Module, lm: nn.Module, metadata: dict[str, str]) -> None:
    tensors = {f"projector.{k}": v.detach().cpu().contiguous() for k, v in projector.state_dict().items()}
    tensors |= {f"lm.{k}": v.detach().cpu().contiguous() for k, v in lm.state_dict().items()}
    save_safetensors(tensors, path, metadata)


def load_tiny_llava(encoder: nn.Module, path: Path, device: str) -> ProjectedVLM:
    """The shipped (or any trained) tiny-llava around `encoder`; provenance records the file hash."""
    if not path.is_file():
        raise BenchError(f"tiny VLM weights {path} do not exist; train them with bench train --suite tiny --method vlm")
    try:
        state = load_file(str(path))
    except Exception as err:  # safetensors raises several types for a damaged file
        raise BenchError(f"tiny VLM weights {path} cannot be read ({err}); retrain or restore the file") from None
    projector, lm = build_parts(encoder.visual.transformer.width, seed=0)
    try:
        projector.load_state_dict({k[10:]: v for k, v in state.items() if k.startswith("projector.")})
        lm.load_state_dict({k[3:]: v for k, v in state.items() if k.startswith("lm.")})
    except RuntimeError as err:
        raise BenchError(f"tiny VLM weights {path} do not fit tiny-llava ({str(err).splitlines()[0]}); "
                         f"use weights written by bench train --method vlm") from None
    vlm = assemble(encoder, projector.float(), lm.float(), path.stem)
    vlm.sha256 = weights_sha256(path)
    return vlm.to(device).eval()


@register_vlm("tiny-llava", "tiny", "tiny CLIP patch tokens -> MLP -> 2-layer Llama, trained on the tiny world "
              "(bench/tiny/weights/tiny-llava.json)")
def _shipped(encoder: nn.Module, device: str, name: str) -> ProjectedVLM:
    return load_tiny_llava(encoder, TINY_WEIGHTS / "tiny-llava.safetensors", device)
