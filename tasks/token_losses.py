"""Per-sample losses over the answer tokens of a VLM (logits [B, T, V], labels [B, T], -100 = not counted).

One place for the arithmetic, so the attack objective and every VLM's `loss` agree to the bit.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def mean_token_ce(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of the labelled tokens per row: the LM loss of the target string."""
    ce = F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100, reduction="none")
    return ce.sum(1) / (labels != -100).sum(1).clamp(min=1)


def mean_token_margin(logits: Tensor, labels: Tensor, kappa: float = 0.0) -> Tensor:
    """Mean over the labelled tokens of max(z_label - max_{other} z, -kappa): CW's margin per token.

    Positive while the string is still the LM's greedy choice token by token; an attacker
    pushing the string away minimises it. The other logits are masked with -inf, so the
    margin stays right when every logit is negative.
    """
    counted = labels != -100
    safe = labels.clamp(min=0)
    z = logits.float()
    z_label = z.gather(2, safe[..., None])[..., 0]
    z_other = z.scatter(2, safe[..., None], float("-inf")).amax(dim=2)
    margin = torch.clamp(z_label - z_other, min=-kappa) * counted
    return margin.sum(1) / counted.sum(1).clamp(min=1)
