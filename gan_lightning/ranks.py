"""Which share of the work is this process's: torch.distributed's ranks, or one process.

Under DDP the metrics split sample generation and feature extraction between the ranks
(``block``) and put the pieces back together (``gather``); without a process group both are
the identity. A datamodule's loader takes its rank's share of the batches (``trainer_ranks``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def grouped() -> bool:
    """Whether this process belongs to a process group (a DDP rank)."""
    return dist.is_available() and dist.is_initialized()


def is_main() -> bool:
    """Whether this process writes what all ranks share (rank 0, or the only process)."""
    return not grouped() or dist.get_rank() == 0


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` of every rank, concatenated in rank order (itself without a process group).

    The ranks' tensors may differ in length (unlike ``all_gather``'s).
    """
    if not grouped() or dist.get_world_size() == 1:
        return tensor
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, tensor.cpu())
    return torch.cat(parts).to(tensor.device)


def block(n: int) -> range:
    """This rank's contiguous share of ``range(n)`` (all of it without a process group)."""
    if not grouped():
        return range(n)
    rank, world = dist.get_rank(), dist.get_world_size()
    return range(rank * n // world, (rank + 1) * n // world)


def trainer_ranks(datamodule: Any) -> dict[str, int]:
    """``rank`` and ``world_size`` of the trainer a datamodule serves; one process when it
    serves none."""
    trainer = getattr(datamodule, "trainer", None)
    if trainer is None:
        return {"rank": 0, "world_size": 1}
    return {"rank": trainer.global_rank, "world_size": trainer.world_size}
