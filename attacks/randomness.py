"""Seeding of attacks: one generator per batch, or one per sample.

A per-sample generator (from SampleSeeds) makes a sample's random starts depend on its own
seed only, so a run's per-sample results do not change with the batch size or with which
samples share its batch.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


class SampleSeeds(tuple):
    """One seed per sample (a tuple of ints): each sample's random draws come from its own
    generator, so its result does not depend on which batch it was in or on the batch size."""

    def rows(self, idx: Tensor) -> "SampleSeeds":
        return SampleSeeds(self[i] for i in idx.tolist())

    def salted(self, salts: Tensor) -> "SampleSeeds":
        """Per-row seeds derived from (seed, salt): independent streams for one sample's
        several runs packed into one batch (APGD-T's targets)."""
        return SampleSeeds((s * 1_000_003 + int(t)) % 2**63 for s, t in zip(self, salts.tolist()))


class RowGenerators:
    """A generator per row (made from SampleSeeds); `rows(idx)` shares them with a subset,
    so a row's later draws (restarts) continue its own stream."""

    def __init__(self, generators: list[torch.Generator]):
        self.generators = generators

    def __len__(self) -> int:
        return len(self.generators)

    def rows(self, idx: Tensor) -> "RowGenerators":
        return RowGenerators([self.generators[i] for i in idx.tolist()])

    def draw(self, fn: Callable[..., Tensor], shape: tuple[int, ...], device: torch.device,
             dtype: torch.dtype) -> Tensor:
        """fn (torch.rand / torch.randn) of `shape`, row i from generator i."""
        if len(self.generators) != shape[0]:
            raise ValueError(f"{len(self.generators)} sample generators for {shape[0]} rows")
        rows = [fn(shape[1:], generator=g, device=device, dtype=dtype) for g in self.generators]
        return torch.stack(rows) if rows else torch.empty(shape, device=device, dtype=dtype)


Random = torch.Generator | RowGenerators


def make_generator(seed: int | torch.Generator | SampleSeeds | RowGenerators, device: torch.device) -> Random:
    """A generator from a seed; SampleSeeds give one generator per sample (RowGenerators)."""
    if isinstance(seed, (torch.Generator, RowGenerators)):
        return seed
    if isinstance(seed, SampleSeeds):
        return RowGenerators([torch.Generator(device=device).manual_seed(int(s)) for s in seed])
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed={seed!r} must be an integer")
    return torch.Generator(device=device).manual_seed(seed)


def draw(fn: Callable[..., Tensor], shape: tuple[int, ...], generator: Random, device: torch.device,
         dtype: torch.dtype) -> Tensor:
    """Random numbers from one generator for the whole batch, or per row from RowGenerators."""
    if isinstance(generator, RowGenerators):
        return generator.draw(fn, shape, device, dtype)
    return fn(shape, generator=generator, device=device, dtype=dtype)


def generator_rows(generator: Random, idx: Tensor) -> Random:
    """The generator(s) for rows idx of a batch: a batch generator is shared, row generators are selected."""
    return generator.rows(idx) if isinstance(generator, RowGenerators) else generator
