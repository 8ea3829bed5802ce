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


ENV_HINT = "run under torchrun or sbatch --array, or pass --shard I/N (which overrides them)"


def detect_shard(flag: str | None, env: Mapping[str, str] = os.environ) -> Shard:
    """--shard, else torchrun's RANK / WORLD_SIZE, else a Slurm array's task id and count.

    A malformed or out-of-range variable is refused, never read as some other shard: a rank
    that silently became shard 0 would duplicate another process's work and skip its own.
    """
    if flag is not None:
        return parse_shard(flag)
    return _torchrun_shard(env) or _slurm_shard(env) or Shard(0, 1)


def _env_int(env: Mapping[str, str], name: str) -> int | None:
    text = env.get(name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise BenchError(f"{name}={text!r} is not an integer; {ENV_HINT}") from None


def _torchrun_shard(env: Mapping[str, str]) -> Shard | None:
    world, rank = _env_int(env, "WORLD_SIZE"), _env_int(env, "RANK")
    if world is None and rank is None:
        return None
    world = 1 if world is None else world  # RANK alone: one process, so only rank 0 is sane
    if world < 1:
        raise BenchError(f"WORLD_SIZE={world} must be >= 1; {ENV_HINT}")
    if rank is None:
        if world == 1:
            return None
        raise BenchError(f"WORLD_SIZE={world} is set but RANK is not; {ENV_HINT}")
    if not 0 <= rank < world:
        raise BenchError(f"RANK={rank} is outside 0..{world - 1} (WORLD_SIZE={world}); {ENV_HINT}")
    return Shard(rank, world) if world > 1 else None


def _slurm_shard(env: Mapping[str, str]) -> Shard | None:
    """Task k of an evenly spaced array (--array=1-8, --array=0-15:4) is shard k."""
    count = _env_int(env, "SLURM_ARRAY_TASK_COUNT")
    if count is None:
        return None
    task = _env_int(env, "SLURM_ARRAY_TASK_ID")
    first, step = _env_int(env, "SLURM_ARRAY_TASK_MIN") or 0, _env_int(env, "SLURM_ARRAY_TASK_STEP") or 1
    last = _env_int(env, "SLURM_ARRAY_TASK_MAX")
    if task is None or count < 1 or step < 1:
        raise BenchError(f"SLURM_ARRAY_TASK_ID={task}, SLURM_ARRAY_TASK_COUNT={count}, SLURM_ARRAY_TASK_STEP={step}: "
                         f"need a task id, a count >= 1 and a step >= 1; {ENV_HINT}")
    offset = task - first
    evenly_spaced = last is None or last == first + step * (count - 1)  # --array=1,3,7 is not
    if not evenly_spaced or offset < 0 or offset % step or offset // step >= count:
        raise BenchError(f"SLURM_ARRAY_TASK_ID={task} is not one of {count} evenly spaced array tasks from "
                         f"SLURM_ARRAY_TASK_MIN={first} by {step}; submit --array=0-{count - 1} or pass --shard I/N")
    return Shard(offset // step, count)


def shard_device(device: str, env: Mapping[str, str] = os.environ) -> str:
    """`--device cuda` under torchrun means this process's GPU (LOCAL_RANK)."""
    if device != "cuda" or "LOCAL_RANK" not in env:
        return device
    local = _env_int(env, "LOCAL_RANK")
    if local is None or local < 0:
        raise BenchError(f"LOCAL_RANK={local} must be >= 0; {ENV_HINT}")
    return f"cuda:{local}"
