"""``InMemoryLoader``: shuffled mini-batches sliced from tensors in memory, in place of a
``DataLoader`` (no per-item indexing, collation or worker processes), resumable mid-epoch and
split between DDP ranks; and what a datamodule needs to serve it (``InMemoryBatches``,
``trained_batches``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch


class EpochCounter:
    """Holds the epoch number, set through Lightning's ``sampler.set_epoch`` protocol."""

    epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class InMemoryLoader:
    """Shuffled mini-batches sliced from tensors held in memory (or on the device).

    Replaces a ``DataLoader`` for data that fits in memory: no per-item indexing, collation or
    worker processes. Each epoch's order is drawn from ``seed + epoch``, so a resumed run sees
    the same batches an uninterrupted one would. It is resumable mid-epoch (Lightning's
    ``state_dict`` / ``load_state_dict`` protocol for loaders): a checkpoint records the epoch
    and how many of its batches were trained (``position``), and the resumed run's first
    epoch starts at the next batch of the same order.

    Under DDP (``world_size`` > 1) each rank takes every ``world_size``-th item of that order,
    starting at its ``rank`` (what Lightning's ``DistributedSampler`` does for a DataLoader),
    and all ranks take ``len // world_size`` items, so they run the same number of batches.
    """

    #: the most memory one gather of shuffled rows takes (a chunk of whole batches)
    chunk_bytes = 16 * 2**20

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        position: Callable[[], int | None] | None = None,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        # Lightning calls ``sampler.set_epoch(epoch)`` before each epoch (resumed runs too).
        self.sampler = EpochCounter()
        #: how many batches of the current epoch have been trained (``trained_batches``)
        self.position = position
        self._resume_at: tuple[int, int] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.sampler.epoch,
                "batches": self.position() if self.position is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        batches = state.get("batches")
        self._resume_at = (int(state["epoch"]), int(batches)) if batches else None

    def __len__(self) -> int:
        n = len(self.tensors[0]) // self.world_size
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        # the epoch is read here, at the first batch, after Lightning's set_epoch
        skip = 0
        if self._resume_at is not None:
            epoch, trained = self._resume_at
            self._resume_at = None
            if epoch == self.sampler.epoch:  # the epoch a checkpoint left mid-way
                skip = trained
        n = len(self.tensors[0])
        order = None
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.sampler.epoch)
            order = torch.randperm(n, generator=generator)
        if self.world_size > 1:
            order = (order if order is not None else torch.arange(n))[self.rank::self.world_size]
            order = order[: n // self.world_size]
        size = self.batch_size
        if order is None:
            for i in range(skip, len(self)):
                yield tuple(t[i * size : (i + 1) * size] for t in self.tensors)
            return
        # Rows are gathered a chunk of batches at a time (at most ``chunk_bytes``), not per
        # batch: a batch is then a view, a gather runs once per chunk instead of between every
        # two steps, and no copy of the whole set is made (benchmarks/interleaved.py times it).
        row_bytes = sum(t[0].numel() * t.element_size() for t in self.tensors)
        per_chunk = max(1, self.chunk_bytes // (row_bytes * size))
        batches = len(self)
        for first in range(skip, batches, per_chunk):
            idx = order[first * size : (first + per_chunk) * size]
            chunk = tuple(t.index_select(0, idx.to(t.device, non_blocking=True))
                          for t in self.tensors)
            for i in range(min(per_chunk, batches - first)):
                yield tuple(c[i * size : (i + 1) * size] for c in chunk)


class InMemoryBatches:
    """Datamodule mixin for ``InMemoryLoader``'s batches: those sliced from tensors already on
    the training device (a CPU run) stay as they are, where Lightning's default transfer
    walks the batch and calls ``.to`` on each tensor, every step."""

    def transfer_batch_to_device(self, batch: Any, device: torch.device,
                                 dataloader_idx: int) -> Any:
        if all(isinstance(t, torch.Tensor) and t.device == device for t in batch):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)


def trained_batches(datamodule: Any) -> Callable[[], int | None]:
    """How many batches of the current epoch the datamodule's trainer has trained (None
    without a trainer): where a checkpoint written now resumes its epoch."""

    def position() -> int | None:
        trainer = getattr(datamodule, "trainer", None)
        if trainer is None:
            return None
        return trainer.fit_loop.epoch_loop.batch_progress.current.processed

    return position
