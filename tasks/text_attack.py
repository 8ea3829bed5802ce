"""What text tasks share: embedding sentences in chunks, the margin loss, and one sentence attacked.

The attack sees a sentence through two callables on candidate sentences (attacks.charmer): its
loss (higher = more adversarial) and whether the candidate is already broken. Both tasks give it
LEAF's loss, the margin of the similarity logits (attack_text_charmer_classification's
margin_loss_lm: the best other score minus the true one), which is positive exactly when the
sentence no longer picks its own class (or image).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from benchutil.errors import BenchError
from tasks.base import AttackSettings
from tasks.text_threat import TEXT, domain_of, edit_budget

TEXT_BATCH = 256  # sentences per text-encoder forward


@torch.no_grad()
def embed_texts(encoder: Any, texts: list[str], device: torch.device) -> Tensor:
    """[N, D] normalised float32 text embeddings, TEXT_BATCH sentences per forward."""
    return torch.cat([encoder.encode_text(encoder.tokenizer(texts[i : i + TEXT_BATCH]).to(device), normalize=True)
                      .float() for i in range(0, len(texts), TEXT_BATCH)])


def margin(scores: Tensor, own: int) -> Tensor:
    """[N] best other score minus the own one: > 0 once another class (image) wins."""
    others = scores.clone()
    others[:, own] = float("-inf")
    return others.max(dim=1).values - scores[:, own]


def attacking(settings: AttackSettings) -> bool:
    """Whether this run edits sentences (eps = k > 0 and a text attack), rather than scoring them clean."""
    return settings.eps > 0 and domain_of(settings.entry) == TEXT


def attack_sentence(sentence: str, loss: Callable[[list[str]], Tensor], is_broken: Callable[[list[str]], Tensor],
                    settings: AttackSettings) -> tuple[str, int]:
    """(adversarial sentence, its edit distance as the attack counted it) within k = eps edits."""
    # imported when a sentence is attacked: the pixel tasks never need it
    from attacks.charmer import MissingLanguageData, charmer

    try:
        outcome = charmer(sentence, loss, is_broken, edit_budget(settings.eps), **settings.args)
    except MissingLanguageData as err:  # nltk's data for the constrained mode: one line, how to get it
        raise BenchError(str(err)) from None
    return outcome.text, outcome.distance
