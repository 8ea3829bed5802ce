"""One process per device under torchrun: rank, device and the process group (nccl or gloo)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from bench.run.devices import check_device


@dataclass(frozen=True)
class Processes:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def start(device: str) -> Processes:
    """Join torchrun's process group when launched by it; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    wanted = torch.device(check_device(device))
    if world > 1:
        if wanted.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            wanted = torch.device("cuda", local)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if wanted.type == "cuda" else "gloo")
    return Processes(rank, world, wanted)


def barrier(procs: Processes) -> None:
    if procs.world > 1:
        dist.barrier()


def stop(procs: Processes) -> None:
    if procs.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
