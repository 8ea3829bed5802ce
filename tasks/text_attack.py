"""What text tasks share: embedding sentences in chunks, the margin loss, and one sentence attacked.

The attack sees a sentence through two callables on candidate sentences (attacks.charmer): its
loss (higher = more adversarial) and whether the candidate is already broken. Both tasks give it
LEAF's loss, the margin of the similarity logits (attack_text_charmer_classification's
margin_loss_lm: the best other score minus the true one), which is positive exactly when the
sentence no longer picks its own class (or image).

A task may bring its own character set (TaskAlphabet: AG-News's is every character of its train
split, LEAF's get_vocabulary): the attack writes those characters unless `--attack-args` names an
alphabet, and the run records which set it was (its size and sha256) in its task settings.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from benchutil.errors import BenchError
from tasks.base import AttackSettings
from tasks.text_threat import TEXT, domain_of, edit_budget

TEXT_BATCH = 256  # sentences per text-encoder forward


@dataclass(frozen=True)
class TaskAlphabet:
    """The characters a task's sentences are attacked with when `--attack-args` names no alphabet."""

    characters: str  # distinct, sorted by code point: the same set gives the same string
    source: str  # where they come from (recorded in every run's task settings)

    def __post_init__(self) -> None:
        if not self.characters or list(self.characters) != sorted(set(self.characters)):
            raise ValueError("a task alphabet is a non-empty string of distinct characters sorted by code point")

    def setting(self) -> dict[str, Any]:
        """What a run records: the set's size and hash identify it without writing it out."""
        return {"source": self.source, "size": len(self.characters),
                "sha256": hashlib.sha256(self.characters.encode("utf-8")).hexdigest()}


@torch.no_grad()
def embed_texts(encoder: Any, texts: list[str], device: torch.device, normalize: bool = True) -> Tensor:
    """[N, D] float32 text embeddings (normalised unless told: LEAF's l2 objectives read them raw),
    TEXT_BATCH sentences per forward."""
    return torch.cat([encoder.encode_text(encoder.tokenizer(texts[i : i + TEXT_BATCH]).to(device), normalize=normalize)
                      .float() for i in range(0, len(texts), TEXT_BATCH)])


class SentenceScorer(nn.Module):
    """Sentences -> scale * cosine similarity of their text embedding to each reference embedding:
    the victim of both text tasks (references: one embedding per class, or the retrieval gallery)."""

    def __init__(self, encoder: nn.Module, references: Tensor, scale: float = 1.0) -> None:
        super().__init__()
        self.encoder, self.scale = encoder, scale
        self.register_buffer("references", references, persistent=False)  # [classes or images, D], normalised

    def scores(self, sentences: list[str]) -> Tensor:
        return self.scale * embed_texts(self.encoder, sentences, self.references.device) @ self.references.T


def margin(scores: Tensor, own: int) -> Tensor:
    """[N] best other score minus the own one: > 0 once another class (image) wins."""
    others = scores.clone()
    others[:, own] = float("-inf")
    return others.max(dim=1).values - scores[:, own]


def attacking(settings: AttackSettings) -> bool:
    """Whether this run edits sentences (eps = k > 0 and a text attack), rather than scoring them clean."""
    return settings.eps > 0 and domain_of(settings.entry) == TEXT


def attack_sentence(sentence: str, loss: Callable[[list[str]], Tensor], is_broken: Callable[[list[str]], Tensor],
                    settings: AttackSettings, alphabet: TaskAlphabet | None = None,
                    batch_size: int | None = None) -> tuple[str, int]:
    """(adversarial sentence, its edit distance as the attack counted it) within k = eps edits;
    `alphabet`, `batch_size`: the task's characters and sentences per loss call, used unless the
    run's attack arguments name others."""
    # imported when a sentence is attacked: the pixel tasks never need it
    from attacks.charmer import MissingLanguageData, charmer

    args = dict(settings.args)
    if alphabet is not None:
        args.setdefault("alphabet", alphabet.characters)
    if batch_size is not None:
        args.setdefault("batch_size", batch_size)
    try:
        outcome = charmer(sentence, loss, is_broken, edit_budget(settings.eps), **args)
    except MissingLanguageData as err:  # nltk's data for the constrained mode: one line, how to get it
        raise BenchError(str(err)) from None
    return outcome.text, outcome.distance
