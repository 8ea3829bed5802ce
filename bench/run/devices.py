"""`--device`: cpu, cuda, cuda:N, mps or auto (CUDA when present), checked before any work."""
from __future__ import annotations

import re

import torch

from benchutil.errors import BenchError

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|mps|auto)$")


def check_device(device: str) -> str:
    """The device to use, or one line naming what is wrong with the request."""
    if not _DEVICE.match(device):
        raise BenchError(f"unknown --device {device!r}; use cpu, cuda, cuda:N, mps or auto")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BenchError(f"--device {device} requested but CUDA is not available here; use --device cpu")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise BenchError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA devices "
                             f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    if device == "mps" and not torch.backends.mps.is_available():
        raise BenchError("--device mps requested but Apple's MPS is not available here; use --device cpu")
    return device
