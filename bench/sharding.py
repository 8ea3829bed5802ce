"""Which part of every run this process evaluates: `--shard I/N`, torchrun, or a Slurm array.

Shard I of N takes the batches k with k mod N == I of every run. Batch seeds depend on the
batch index only, so N shards write exactly the records one process would; each shard
appends to its own records file in the run folder and the store reads their union. No
process group is needed: a crashed shard is re-run alone.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from benchutil.errors import BenchError


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def takes(self, batch_index: int) -> bool:
        return batch_index % self.count == self.index

    @property
    def alone(self) -> bool:
        return self.count == 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """'I/N' with 0 <= I < N."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise BenchError(f"malformed --shard {text!r}: write I/N, e.g. 0/8 for the first of 8 shards") from None
    if not 0 <= index < count:
        raise BenchError(f"--shard {text}: I must be in 0..N-1 (0/{max(count, 1)} is the first shard)")
    return Shard(index, count)


def detect_shard(flag: str | None, env: Mapping[str, str] = os.environ) -> Shard:
    """--shard, else torchrun's RANK / WORLD_SIZE, else a Slurm array's task id and count."""
    if flag is not None:
        return parse_shard(flag)
    try:
        if int(env.get("WORLD_SIZE", "1")) > 1:
            return Shard(int(env["RANK"]), int(env["WORLD_SIZE"]))
        if "SLURM_ARRAY_TASK_COUNT" in env:
            first = int(env.get("SLURM_ARRAY_TASK_MIN", "0"))  # arrays may start at 1 (--array=1-8)
            return parse_shard(f"{int(env['SLURM_ARRAY_TASK_ID']) - first}/{int(env['SLURM_ARRAY_TASK_COUNT'])}")
    except (KeyError, ValueError):
        raise BenchError("RANK / WORLD_SIZE or SLURM_ARRAY_TASK_* are set but not integers; run under torchrun or "
                         "sbatch --array, or pass --shard I/N") from None
    return Shard(0, 1)


def shard_device(device: str, env: Mapping[str, str] = os.environ) -> str:
    """`--device cuda` under torchrun means this process's GPU (LOCAL_RANK)."""
    if device == "cuda" and "LOCAL_RANK" in env:
        return f"cuda:{int(env['LOCAL_RANK'])}"
    return device
