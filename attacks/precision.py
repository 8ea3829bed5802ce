"""The precision an attack computes in, separate from the precision results are judged in.

`--precision bf16 | fp16` runs the attack's forward and backward passes under autocast;
every point the attack returns is then re-scored by the float32 model (attacks.worst_case,
the VLM protocol), so a low-precision attack can miss an adversarial example but never
invent one. Because a low-precision attack is measurably weaker (benchmarks/precision.py),
it ends with a float32 stage, as RobustVLM's fp16 attack does: APGD-CE from the best
low-precision point on the samples still unbroken (zero-shot), the refinement pass (VLMs).
`tf32` keeps float32 tensors and lets CUDA's matmuls use TF32.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import ContextManager

import torch
from torch import Tensor, nn

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
LOW_PRECISIONS = ("bf16", "fp16")  # attacks in these end with a float32 stage (RobustVLM's)
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


@contextmanager
def float32_weights(model: nn.Module) -> Iterator[None]:
    """The model's floating-point weights and buffers in float32 for the duration, then back in
    their own dtypes. float16 / bfloat16 -> float32 -> back is exact, so the weights after are
    bit-identical to before; inside, the model computes as if loaded in float32 from its
    half-precision checkpoint (RobustVLM reloads the model in float32 for its last passes)."""
    tensors = [t for t in [*model.parameters(), *model.buffers()] if t.is_floating_point()]
    dtypes = [t.dtype for t in tensors]
    if all(d == torch.float32 for d in dtypes):
        yield
        return
    for t in tensors:
        t.data = t.data.float()
    try:
        yield
    finally:
        for t, dtype in zip(tensors, dtypes):
            t.data = t.data.to(dtype)
