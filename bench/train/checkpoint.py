"""Training state on disk: atomic writes, exact resume (weights, optimiser, step, RNG)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from bench.errors import BenchError

STATE = "train_state.pt"


def _atomic(path: Path, write) -> None:  # type: ignore[no-untyped-def]
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # safetensors creates files private to the user
    tmp.replace(path)


def save_state(out: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int,
               generator: torch.Generator, extra: dict[str, Any]) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "generator": generator.get_state(), "torch_rng": torch.get_rng_state(), "extra": extra}
    _atomic(out / STATE, lambda p: torch.save(state, p))


def load_state(out: Path) -> dict[str, Any] | None:
    path = out / STATE
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise BenchError(f"cannot resume from {path}: {type(err).__name__}; delete it to start over") from None


def save_weights(path: Path, state: dict[str, Tensor], metadata: dict[str, str], dtype: torch.dtype) -> None:
    tensors = {k: v.detach().to(dtype).contiguous() for k, v in state.items()}
    _atomic(path, lambda p: save_file(tensors, str(p), metadata=metadata))


def write_card(path: Path, card: dict[str, Any]) -> None:
    _atomic(path, lambda p: p.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n"))
