"""Training on several GPUs or machines: torchrun + DistributedDataParallel, unchanged commands.

``torchrun --nproc-per-node N -m core.cli.main train ...`` sets ``WORLD_SIZE``/``RANK``/
``LOCAL_RANK``; the trainers then join a process group (NCCL on GPUs, gloo on CPUs), wrap their
networks in DistributedDataParallel and let every rank take its slice of the same global batch
(every rank draws the whole batch from the same seeded generator, so the slices never overlap
and the run equals a single-process run of that global batch). Only rank 0 writes checkpoints,
logs and model files. Without those variables nothing changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from core.errors import TrainingError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def shard(self, count: int, what: str) -> slice:
        """This rank's slice of ``count`` items of the global batch (must divide evenly)."""
        if count % self.world:
            raise TrainingError(None, f"{what} per step ({count}) must be divisible by the number of "
                                      f"processes ({self.world})")
        per = count // self.world
        return slice(self.rank * per, (self.rank + 1) * per)


def current() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size())
    return DistInfo()


def init_from_env(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun describes (if any); returns this rank's info and device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return DistInfo(), device
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    return current(), device


def wrap(module: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel around ``module`` when running distributed, else ``module``."""
    if not info.active:
        return module
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return DistributedDataParallel(module, device_ids=[device.index], find_unused_parameters=True)
    return DistributedDataParallel(module, find_unused_parameters=True)
