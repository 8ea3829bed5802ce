"""The precision an attack computes in, separate from the precision results are judged in.

`--precision bf16 | fp16` runs the attack's forward and backward passes under autocast;
every point the attack returns is then re-scored by the float32 model (attacks.worst_case,
the VLM protocol), so a low-precision attack can miss an adversarial example but never
invent one. `tf32` keeps float32 tensors and lets CUDA's matmuls use TF32.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import ContextManager

import torch
from torch import Tensor, nn

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: str, device: torch.device) -> ContextManager[object]:
    """The autocast context of a precision (nothing for fp32 / tf32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision in _DTYPES:
        return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])
    return nullcontext()


@contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """TF32 matmuls and convolutions on CUDA for the duration (restored afterwards)."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled or before[0]
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


class AttackPrecision(nn.Module):
    """A classifier whose forward runs in `precision`; its logits come back as float32."""

    def __init__(self, model: nn.Module, precision: str) -> None:
        super().__init__()
        self.model, self.precision = model, precision

    def forward(self, x: Tensor) -> Tensor:
        with autocast(self.precision, x.device):
            return self.model(x).float()
