"""A tiny random LLaVA-1.5 in the llava-hf format, with a tokenizer built offline.

Same classes and files as llava-hf/llava-1.5-7b-hf (LlavaForConditionalGeneration, its
config.json and safetensors, a fast tokenizer with <s>, </s>, <unk>, <image>), at a size
that loads in a second; its projector takes the tiny-vit-test encoder's 64-dim tokens.
"""
from __future__ import annotations

from pathlib import Path

import torch

WORDS = ("USER ASSISTANT : a an the red green blue circle square photo of is what color shape how many yes no "
         "provide short caption for this image answer question using single word or phrase please reset your "
         "password maybe").split()


def build_tokenizer(path: Path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
    vocab = {w: i for i, w in enumerate([*specials, *dict.fromkeys([*WORDS, "\n", ".", "?", ",", "1", "2", "3"])])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>", additional_special_tokens=["<image>"])
    tokenizer.save_pretrained(str(path))
    return tokenizer


def make_llava(path: Path, vision_width: int = 64, seed: int = 0) -> Path:
    """path/ with config.json, model.safetensors and the tokenizer files."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    tokenizer = build_tokenizer(path)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    vision = CLIPVisionConfig(hidden_size=vision_width, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=2, image_size=32, patch_size=8, projection_dim=64)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_layer=-2, projector_hidden_act="gelu")
    torch.manual_seed(seed)
    LlavaForConditionalGeneration(config).save_pretrained(str(path))
    return path


def make_llama(path: Path, seed: int = 0) -> Path:
    """A tiny random Llama causal LM + tokenizer in the transformers format (OpenFlamingo's language side)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(path)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(str(path))
    return path
