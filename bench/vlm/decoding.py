"""Greedy decoding with a key-value cache for any transformers causal LM, batched with left
padding: what both VLM families share (LLaVA-style on embeddings, Flamingo on token ids).

Positions follow the attention mask, so a left-padded row decodes exactly as it would alone;
argument names are taken from the model's signature (transformers 5 renamed the cache).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def accepted_arguments(forward: Callable[..., Any]) -> set[str]:
    return set(inspect.signature(forward).parameters)


def keep_target_logits(accepted: set[str], targets: list[list[int]]) -> dict[str, int]:
    """The LM's argument for computing logits only at the positions predicting the targets
    (left-padded rows end with them): the prompt's logits would be a [B, T, V] tensor
    (V = 32000 for LLaMA) that no loss reads. Empty where the LM does not take it."""
    if "logits_to_keep" not in accepted:
        return {}
    return {"logits_to_keep": max(map(len, targets)) + 1}


def greedy_decode(lm: Callable[..., Any], accepted: set[str], prompt: dict[str, Tensor],
                  next_inputs: Callable[[Tensor], dict[str, Tensor]], mask: Tensor, eos_id: int,
                  max_new_tokens: int) -> list[list[int]]:
    """The ids each row produces after its prompt, up to (not including) its end token.

    prompt: the model inputs of the prompt (input_ids or inputs_embeds); next_inputs(token):
    those of one new token per row.
    """
    cache_arg = "cache" if "cache" in accepted else "past_key_values"
    first = {"logits_to_keep": 1} if "logits_to_keep" in accepted else {}
    positions = (mask.cumsum(1) - 1).clamp(min=0)

    def where(p: Tensor) -> dict[str, Tensor]:
        return {"position_ids": p} if "position_ids" in accepted else {}

    out = lm(**prompt, attention_mask=mask, use_cache=True, **first, **where(positions))
    last = positions[:, -1:]
    n = mask.shape[0]
    done = torch.zeros(n, dtype=torch.bool, device=mask.device)
    produced: list[Tensor] = []
    for step in range(max_new_tokens):
        token = out.logits[:, -1].argmax(-1)
        token = torch.where(done, torch.full_like(token, eos_id), token)
        produced.append(token)
        done |= token == eos_id
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones(n, 1, dtype=mask.dtype, device=mask.device)], dim=1)
        last = last + 1
        out = lm(**next_inputs(token[:, None]), attention_mask=mask, use_cache=True,
                 **{cache_arg: getattr(out, cache_arg)}, **where(last))
    rows = torch.stack(produced, 1).tolist() if produced else [[] for _ in range(n)]
    return [row[: row.index(eos_id)] if eos_id in row else row for row in rows]
