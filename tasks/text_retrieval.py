"""Text-to-image retrieval with the query attacked (LEAF's eval_retrieval.py, our success criterion).

Every caption of the split is a query over the split's clean images, scored by cosine of the
normalised embeddings (CLIP_benchmark's zeroshot_retrieval; no template). A query finds its
image when that image is at rank 1 (text-to-image R@1, LEAF's "ImagePrec@1"). The attack
(Charmer, `--norm levenshtein`, eps = k) edits at most k characters of the query; the gallery
stays clean.

What the attack maximises is the task's objective (tasks/retrieval_objectives.py). By default
the retrieval margin itself (the best other image's similarity minus the own image's, LEAF's
margin loss of its classification attack), and a query is broken, and left, once another image
outranks its own. LEAF's eval_retrieval.py instead attacks each caption towards or away from a
fixed sentence's embedding (its `--obj` with a `--target` caption) for all k rounds and then
re-scores retrieval: the tasks named "...-leaf..." do that. Either way a query whose image is
not at rank 1 clean is not attacked (it counts as not robust whatever an attack would do).

Records: a query's score is 100 when its image is at rank 1; its clean and adversarial ranks
and its image's id are kept beside the sentences.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tasks.base import (
    AttackSettings,
    Models,
    Record,
    Victim,
    refuse_target,
    seeded_subset,
)
from tasks.imagefolder import check_images
from tasks.retrieval import RetrievalTask
from tasks.retrieval_data import RetrievalData
from tasks.retrieval_objectives import (
    LEAF_BATCH_SIZE,
    MARGIN_OBJECTIVE,
    RetrievalObjective,
    leaf_loss,
)
from tasks.text_attack import SentenceScorer, attack_sentence, attacking, margin
from tasks.text_records import CLEAN, text_core_records
from tasks.text_threat import TEXT

QUERY_SEPARATOR = "/"  # a query's id: "<image id>/<caption index>"


def rank_of(scores: Tensor, own: int) -> Tensor:
    """[N] the own image's rank: 1 + the images scored strictly above it."""
    return 1 + (scores > scores[:, own : own + 1]).sum(dim=1)


class TextRetrievalTask:
    """One retrieval split, its captions as queries; sample ids are "<image id>/<caption index>"."""

    kind = "text-to-image retrieval"
    metric = "text-to-image R@1 %"
    domain = TEXT
    robustvlm_early_stop = None

    def __init__(self, data: RetrievalData, objective: RetrievalObjective = MARGIN_OBJECTIVE) -> None:
        self.data, self.name, self.objective = data, data.name, objective
        self._retrieval = RetrievalTask(data)  # its gallery embeddings (cached by checkpoint)
        self.queries = {f"{image_id}{QUERY_SEPARATOR}{k}": (caption, n)
                        for n, (image_id, captions) in enumerate(zip(data.ids, data.captions))
                        for k, caption in enumerate(captions)}
        self.settings: dict[str, Any] = {"captions": data.caption_source, "recall_at": [1],
                                         "queries": "captions", "gallery_images": len(data.ids),
                                         **objective.settings()}

    def sample_ids(self, n: int | None, seed: int) -> list[str]:
        """A seeded subset of the captions as queries (the gallery stays the whole split)."""
        return seeded_subset(self.queries, n, seed)

    def check_data(self, ids: list[str]) -> None:
        check_images(self.data.images)  # every image: the gallery holds them all

    def check_attack(self, settings: AttackSettings) -> None:
        refuse_target(settings, self.name)

    def victim(self, models: Models, cache_dir: Path | None) -> Victim:
        encoder = models.encoder
        _, gallery = self._retrieval.embeddings(encoder, cache_dir)
        return Victim(SentenceScorer(encoder, gallery).eval(), encoder.provenance.name,
                      encoder.provenance.sha256, encoder.image_size)

    def load(self, ids: list[str], size: int) -> list[tuple[str, int]]:
        return [self.queries[i] for i in ids]

    @torch.no_grad()
    def attack(self, victim: SentenceScorer, ids: list[str], batch: list[tuple[str, int]],
               settings: AttackSettings) -> list[Record]:
        sentences = [s for s, _ in batch]
        scores = victim.scores(sentences)
        clean_rank = [int(rank_of(scores[j : j + 1], own)[0]) for j, (_, own) in enumerate(batch)]
        adv_texts, distances, adv_rank = list(sentences), [0] * len(ids), list(clean_rank)
        leaf = leaf_loss(victim.encoder, self.objective, victim.references.device) \
            if self.objective.is_leaf and attacking(settings) else None
        for j, (sentence, own) in enumerate(batch):
            if not attacking(settings) or clean_rank[j] != 1:
                continue
            if leaf is not None:  # LEAF's target-sentence objective, all k rounds
                adv_texts[j], distances[j] = attack_sentence(sentence, leaf, never_broken, settings,
                                                             batch_size=LEAF_BATCH_SIZE)
            else:
                adv_texts[j], distances[j] = self._attack_margin(victim, sentence, own, settings)
            if adv_texts[j] != sentence:  # judged here, on the query alone
                adv_rank[j] = int(rank_of(victim.scores([adv_texts[j]]), own)[0])
        found = [r == 1 for r in adv_rank]
        winners = [None if f else (settings.entry.name if c == 1 else CLEAN) for c, f in zip(clean_rank, found)]
        extras = [{"image": self.data.ids[own], "clean_rank": clean_rank[j], "adv_rank": adv_rank[j]}
                  for j, (_, own) in enumerate(batch)]
        return text_core_records(ids, sentences, adv_texts, distances, [100.0 * (r == 1) for r in clean_rank],
                                 [100.0 * f for f in found], winners, extras)

    @staticmethod
    def _attack_margin(victim: SentenceScorer, sentence: str, own: int,
                       settings: AttackSettings) -> tuple[str, int]:
        """Our objective: the retrieval margin, stopping once another image outranks the own one."""

        def loss(candidates: list[str]) -> Tensor:
            return margin(victim.scores(candidates), own)

        def is_broken(candidates: list[str]) -> Tensor:
            return rank_of(victim.scores(candidates), own) > 1

        return attack_sentence(sentence, loss, is_broken, settings)


def never_broken(candidates: list[str]) -> Tensor:
    """LEAF's attack_text_charmer_inference has no success test: charmer makes all k rounds, and
    its final pick is the best-scoring candidate either way (is_broken only stops it)."""
    return torch.zeros(len(candidates), dtype=torch.bool)
