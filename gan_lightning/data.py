"""The datamodules: ``GANDataModule`` (MNIST, Fashion-MNIST, CIFAR-10), ``FolderDataModule``
(your own images), ``CelebADataModule`` and ``GaussianDataModule`` (the 2-D toy).

Each decodes its images once into a tensor held in memory (uint8, or float32 in [-1, 1]) and
serves it through ``InMemoryLoader``: no per-item PIL transforms, no collation, no worker
processes. Where the images come from and whether their files are whole is
``gan_lightning.datasets``'s; how they are batched is ``gan_lightning.loader``'s.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch

from gan_lightning.cache import default_cache_dir
from gan_lightning.datasets import celeba, load_images
from gan_lightning.images import ImageFolderError, Listing, list_images, load_images_cached
from gan_lightning.loader import InMemoryBatches, InMemoryLoader, trained_batches
from gan_lightning.pixels import to_nchw, to_unit_range, unit_float
from gan_lightning.ranks import trainer_ranks

__all__ = ["CelebADataModule", "FolderDataModule", "GANDataModule", "GaussianDataModule"]

log = logging.getLogger(__name__)


class GANDataModule(InMemoryBatches, L.LightningDataModule):
    """Training images (and labels) for a GAN, held in memory.

    ``storage``: ``float`` holds them as [-1, 1] float32; ``uint8`` as bytes (a quarter of the
    memory), each batch made float on the device (``on_after_batch_transfer``), to the same
    values. ``train_dataloader`` yields ``(images, labels)`` with images ``(B, C, H, W)``.
    ``reference_images`` gives the split that metrics compare samples with (the test split).

    ``validation`` images of the training split are held out of training, a fixed draw of
    every run (seed 0, whatever the run's seed): ``validation_images`` gives them, and the
    metrics choose a run's best epoch on them rather than on the test split they report on.
    ``auto`` holds out ``AUTO_VALIDATION`` images of a training split of at least
    ``AUTO_VALIDATION_MIN`` (the full MNIST, Fashion-MNIST, CIFAR-10), none of a smaller one
    (the bundled subset, test sets); 0 trains on the whole split.
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
        validation: int | str = "auto",
    ) -> None:
        super().__init__()
        if storage not in ("float", "uint8"):
            raise ValueError(f"dataset.storage must be float or uint8, got {storage!r}")
        if validation != "auto" and not (isinstance(validation, int) and validation >= 0):
            raise ValueError(f"dataset.validation must be auto or a number of images >= 0, "
                             f"got {validation!r}")
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
        self.validation = validation
        self.source_used: str | None = None
        #: ``(N, C, H, W)``: float in [-1, 1], or uint8 (made float per batch, on the device)
        self.images: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        #: the held-out images (as ``images``) and labels; None when nothing is held out
        self.held_out: tuple[torch.Tensor, torch.Tensor] | None = None
        #: the whole training split, where some of it is held out (the classifier's)
        self._whole: tuple[torch.Tensor, torch.Tensor] | None = None
        #: where a decoded image set keeps its cache (and the metrics their reference)
        self.cache_folder: Path | None = None
        self._test: tuple[torch.Tensor, torch.Tensor] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.images is not None:
            return
        images, labels, self.source_used = load_images(
            self.name, self.data_dir, train=True, download=self.download, source=self.source
        )
        # uint8: a quarter of float32's memory; each batch is made float on the device
        self.images = to_nchw(images) if self.storage == "uint8" else to_unit_range(images)
        self.labels = labels
        self._check_shape(list(self.images.shape[1:]))
        self._hold_out(held_out_count(self.validation, len(self.images)))
        log.info("%s: %d training images, %d held out for validation (%s)", self.name,
                 len(self.images), self.held_out_size, self.source_used)

    def _hold_out(self, n: int) -> None:
        """Take ``n`` images, a fixed draw, out of training (the rest keep their order)."""
        if n == 0:
            return
        if n >= len(self.images):
            raise ValueError(f"dataset.validation={n} would hold out all {len(self.images)} "
                             f"training images of '{self.name}'; use fewer, or 0")
        order = torch.randperm(len(self.images), generator=torch.Generator().manual_seed(0))
        kept = order[n:].sort().values
        self._whole = self.images, self.labels
        self.held_out = self.images[order[:n]], self.labels[order[:n]]
        self.images, self.labels = self.images[kept], self.labels[kept]

    @property
    def held_out_size(self) -> int:
        return 0 if self.held_out is None else len(self.held_out[0])

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

    def validation_images(self, n: int | None = None) -> torch.Tensor | None:
        """Up to ``n`` held-out training images, [-1, 1], ``(N, C, H, W)``; None when the run
        holds none out (``validation=0``, or ``auto`` on a small split)."""
        self.setup()
        if self.held_out is None:
            return None
        images = self.held_out[0][:n] if n else self.held_out[0]
        return unit_float(images)

    def labelled_splits(self) -> tuple[torch.Tensor, ...]:
        """``(train images, labels, test images, labels)``, for the classifier metrics
        (``metrics.features.LabelledSplits``): images ``(N, C, H, W)`` as held (float in
        [-1, 1], or uint8 that ``pixels.unit_float`` maps there). The whole training split,
        held-out images included: the classifier is the measuring instrument, the same for
        every run whatever it holds out."""
        self.setup()
        test, test_labels = self._test_split()
        images, labels = self._whole or (self.images, self.labels)
        return images, labels, to_unit_range(test), test_labels

    def train_dataloader(self) -> InMemoryLoader:
        return InMemoryLoader(
            self.images,
            self.labels,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
            seed=self.seed,
            position=trained_batches(self),
            **trainer_ranks(self),
        )


#: ``validation=auto``: this many training images held out, from a split of at least
#: ``AUTO_VALIDATION_MIN`` (the 55,000 / 5,000 split of MNIST's training images that
#: TensorFlow's MNIST reader made common)
AUTO_VALIDATION, AUTO_VALIDATION_MIN = 5_000, 20_000


def held_out_count(validation: int | str, size: int) -> int:
    """How many of a training split of ``size`` images ``validation`` holds out."""
    if validation == "auto":
        return AUTO_VALIDATION if size >= AUTO_VALIDATION_MIN else 0
    return int(validation)


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
        # its reference is a draw of the set itself: nothing to hold a validation set out of
        super().__init__(name=name, **{**kwargs, "validation": 0})
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
        dataset = celeba(root, self.split, self.download)
        folder = Path(dataset.root) / dataset.base_folder / "img_align_celeba"
        return Listing(folder, tuple(folder / name for name in dataset.filename))



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
                              position=trained_batches(self), **trainer_ranks(self))
