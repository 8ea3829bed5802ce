"""Recall@k of zero-shot retrieval, as CLIP_benchmark defines it, per image and per run.

CLIP_benchmark (clip_benchmark/metrics/zeroshot_retrieval.py `evaluate`) counts a query as
retrieved at k when any of its positives is among its k highest-scoring candidates
(`recall_at_k(...) > 0`, which ranks with `torch.topk`), and averages over the queries:
image-to-text ("text_retrieval_recall@k") over the images, text-to-image
("image_retrieval_recall@k") over the captions. The functions below rank the same score rows
with the same `torch.topk`, so ties fall where they fall there.

A run's records hold, per image, its image-to-text hits at each k and how many of its own
captions retrieve it at each k; `run_recalls` turns them into the reference's six numbers,
clean and under attack (CLIP_benchmark's names; fractions, as its results.json).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from benchutil.errors import BenchError

RETRIEVAL_KIND = "zero-shot retrieval"  # the task kind whose runs' results.json carry these recalls
RECALL_KS = (1, 5, 10)  # the recalls of CLIP-style papers (CLIP_benchmark's --recall_k)
# The record fields (per image) the run's recalls are computed from.
I2T_HITS, T2I_HITS, CAPTIONS = "i2t_hits", "t2i_hits", "n_captions"


def image_to_text_hits(scores: Tensor, positives: Tensor) -> Tensor:
    """[B, captions] scores and positive mask -> [B, len(RECALL_KS)] bool: a positive is in the top k."""
    hits = [positives.gather(1, scores.topk(min(k, scores.shape[1]), dim=1).indices).any(dim=1) for k in RECALL_KS]
    return torch.stack(hits, dim=1)


def text_to_image_hits(scores: Tensor, own: Tensor) -> Tensor:
    """[..., images] scores of captions and each caption's image index [...] -> [..., len(RECALL_KS)]
    bool: its image is in the top k (one positive per caption)."""
    hits = [(scores.topk(min(k, scores.shape[-1]), dim=-1).indices == own[..., None]).any(dim=-1) for k in RECALL_KS]
    return torch.stack(hits, dim=-1)


def run_recalls(records: list[dict[str, Any]]) -> dict[str, float | int]:
    """The six recalls of a run, under attack (CLIP_benchmark's names) and clean ('clean_' first),
    from its per-image records; text-to-image is averaged over the captions of the images."""
    for record in records:
        missing = [f"{phase}_{field}" for phase in ("clean", "adv") for field in (I2T_HITS, T2I_HITS)
                   if f"{phase}_{field}" not in record] + ([CAPTIONS] if CAPTIONS not in record else [])
        if missing:
            raise BenchError(f"retrieval record {record.get('id')!r} has no '{missing[0]}'; delete its line (its "
                             "image is then re-run on the next bench run)")
    images = max(len(records), 1)
    captions = max(sum(r[CAPTIONS] for r in records), 1)
    out: dict[str, float | int] = {}
    for phase, prefix in (("adv", ""), ("clean", "clean_")):
        for j, k in enumerate(RECALL_KS):
            out[f"{prefix}text_retrieval_recall@{k}"] = sum(bool(r[f"{phase}_{I2T_HITS}"][j]) for r in records) / images
            out[f"{prefix}image_retrieval_recall@{k}"] = sum(r[f"{phase}_{T2I_HITS}"][j] for r in records) / captions
    out[CAPTIONS] = sum(r[CAPTIONS] for r in records)  # the text queries behind text-to-image
    return out
