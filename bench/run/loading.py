"""Batches decoded ahead of the attack, in DataLoader worker processes.

Image decoding and resizing run in `workers` processes while the model attacks the
previous batch (pinned memory when the model is on CUDA); with 0 workers they run in the
main process. The batches, their order and their bytes are the same either way.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import DataLoader, Dataset


def default_workers() -> int:
    """Half the CPUs (the other half feeds the model), at most 8; none on a 2-core machine."""
    return max(0, min(8, (os.cpu_count() or 1) // 2 - 1))


class _Batches(Dataset):
    def __init__(self, batches: list[tuple[int, list[str]]], load: Callable[[list[str]], Any]) -> None:
        self.batches, self.load = batches, load

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, j: int) -> tuple[int, list[str], Any]:
        k, ids = self.batches[j]
        return k, ids, self.load(ids)


def prefetch(batches: list[tuple[int, list[str]]], load: Callable[[list[str]], Any], workers: int,
             pin_memory: bool) -> Iterator[tuple[int, list[str], Any]]:
    """(batch index, ids, loaded batch) in order, loaded by `workers` processes."""
    if workers == 0 or len(batches) < 2:
        for k, ids in batches:
            yield k, ids, load(ids)
        return
    loader = DataLoader(_Batches(batches, load), batch_size=None, shuffle=False, num_workers=workers,
                        pin_memory=pin_memory, prefetch_factor=2, persistent_workers=False)
    yield from loader
