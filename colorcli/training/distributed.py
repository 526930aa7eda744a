"""The process group of a run: one process, or ``WORLD_SIZE`` > 1 processes under torchrun
(NCCL on CUDA, gloo on CPU, initialised from the environment). Only rank 0 (``Dist.main``)
validates, writes files and reports events."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def init_distributed(device: torch.device) -> tuple[Dist, torch.device]:
    """This process's place in the run and its device (``cuda:LOCAL_RANK`` under torchrun on
    CUDA); initialises the process group unless the caller already has."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        owns = True
    return Dist(world, rank, local, owns), device


def finish(d: Dist) -> None:
    """Destroy the process group if ``init_distributed`` created it."""
    if d.owns_group and dist.is_initialized():
        dist.destroy_process_group()
