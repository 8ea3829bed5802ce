"""Per-sample losses over the answer tokens of a VLM (logits [B, T', V], labels [B, T], -100 = not counted).

One place for the arithmetic, so the attack objective and every VLM's `loss` agree to the bit.
A VLM may compute logits only for the last T' <= T positions (the answer's; the prompt's are
never counted): the per-token values are then zero-filled back to length T before summing, so
the sums run over the same numbers in the same order as with every position's logits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _tail(logits: Tensor, labels: Tensor) -> Tensor:
    """The labels of the positions `logits` cover (the last ones); every labelled token must be among them."""
    kept = logits.shape[1]
    if kept < labels.shape[1] and bool((labels[:, : labels.shape[1] - kept] != -100).any()):
        raise ValueError(f"logits cover the last {kept} positions but labelled tokens start earlier")
    return labels[:, labels.shape[1] - kept :]


def _full_length(values: Tensor, labels: Tensor) -> Tensor:
    return F.pad(values, (labels.shape[1] - values.shape[1], 0))


def mean_token_ce(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of the labelled tokens per row: the LM loss of the target string."""
    ce = F.cross_entropy(logits.float().transpose(1, 2), _tail(logits, labels), ignore_index=-100, reduction="none")
    return _full_length(ce, labels).sum(1) / (labels != -100).sum(1).clamp(min=1)


def mean_token_margin(logits: Tensor, labels: Tensor, kappa: float = 0.0) -> Tensor:
    """Mean over the labelled tokens of max(z_label - max_{other} z, -kappa): CW's margin per token.

    Positive while the string is still the LM's greedy choice token by token; an attacker
    pushing the string away minimises it. The other logits are masked with -inf, so the
    margin stays right when every logit is negative.
    """
    tail = _tail(logits, labels)
    counted = tail != -100
    safe = tail.clamp(min=0)
    z = logits.float()
    z_label = z.gather(2, safe[..., None])[..., 0]
    z_other = z.scatter(2, safe[..., None], float("-inf")).amax(dim=2)
    margin = torch.clamp(z_label - z_other, min=-kappa) * counted
    return _full_length(margin, labels).sum(1) / (labels != -100).sum(1).clamp(min=1)
