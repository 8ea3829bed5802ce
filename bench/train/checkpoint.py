"""Training state on disk: atomic writes, exact resume (weights, optimiser, step, RNG)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bench.encoders.weights import save_safetensors
from benchutil.errors import BenchError
from benchutil.fileio import atomic_write, write_json_atomic

STATE = "train_state.pt"


def save_state(out: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int,
               generator: torch.Generator | None, extra: dict[str, Any]) -> None:
    """generator: the run's sampling RNG, if it has one (step-indexed runs need none)."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "torch_rng": torch.get_rng_state(), "extra": extra}
    if generator is not None:
        state["generator"] = generator.get_state()
    atomic_write(out / STATE, lambda p: torch.save(state, p))


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
    atomic_write(path, lambda p: save_safetensors(tensors, p, metadata))


def write_card(path: Path, card: dict[str, Any]) -> None:
    write_json_atomic(path, card)
