"""Image files -> one uint8 array ``(N, C, R, R)``: found, decoded once, cached, held as uint8.

``load_images_cached`` decodes every file (in threads, with a progress bar): the first frame,
converted to RGB or grayscale (alpha composited on white, palettes expanded, 16-bit scaled),
resized on its shorter side to the resolution and centre-cropped. The array is written
atomically under the cache folder, keyed by the file list, sizes, mtimes, resolution and
channels, and reused by every later run (and by the jobs of a sweep, which wait on a file
lock while one of them decodes). A set bigger than the memory budget is memory-mapped from
the cache instead of loaded.

Unreadable files are skipped with one warning that counts them and names the first few; a
folder with no readable image, or with more than ``max_unreadable`` of its files unreadable,
is an error naming the folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock

from gan_lightning.errors import SetupError

log = logging.getLogger(__name__)

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")
#: part of the cache key: a change in how images are decoded makes new cache entries
CACHE_VERSION = 1
#: what transparent pixels are composited on
BACKGROUND = (255, 255, 255)


class ImageFolderError(SetupError, ValueError):
    """A folder that cannot serve as a dataset (missing, empty, mostly unreadable)."""


@dataclass(frozen=True)
class Listing:
    """The image files under a folder and, when it has class subfolders, their labels."""

    root: Path
    files: tuple[Path, ...]
    labels: tuple[int, ...] | None = None
    classes: tuple[str, ...] = ()


def list_images(root: str | Path) -> Listing:
    """Every image file under ``root`` (recursive, hidden files and folders skipped), sorted.

    Labelled when every image sits in a first-level subfolder and there are two or more of
    them: the subfolders' names, sorted, are the classes (torchvision's ``ImageFolder``
    convention). Otherwise the set is unlabelled.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ImageFolderError(f"dataset.path: '{root}' is not a folder. Point dataset.path at "
                               f"a folder of images (png, jpg, bmp, webp, gif; class "
                               f"subfolders become labels)")
    files = tuple(sorted(
        p for p in root.rglob("*")
        if p.suffix.lower() in SUFFIXES and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)))
    parts = [p.relative_to(root).parts for p in files]
    tops = sorted({part[0] for part in parts if len(part) > 1})
    if files and len(tops) >= 2 and all(len(part) > 1 for part in parts):
        index = {name: i for i, name in enumerate(tops)}
        return Listing(root, files, tuple(index[part[0]] for part in parts), tuple(tops))
    return Listing(root, files)


@functools.lru_cache(maxsize=32)
def _class_count(root: str) -> int | None:
    return len(list_images(root).classes) or None


def folder_classes(path: str | None) -> int | None:
    """``${folder_classes:${dataset.path}}``: how many class subfolders (None: unlabelled)."""
    if not path or not Path(path).expanduser().is_dir():
        return None  # the datamodule says what is wrong with the path, with the fix
    return _class_count(str(Path(path).expanduser().resolve()))


def _to_mode(image, channels: int):
    """``image`` as 8-bit RGB (``channels=3``) or grayscale (1)."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values / 257.0  # 16-bit range -> 8-bit
        elif image.mode == "F" and values.max(initial=0) <= 1.0:
            values = values * 255.0
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        background = Image.new("RGBA", image.size, (*BACKGROUND, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB" if channels == 3 else "L")


def decode(path: str | Path, resolution: int, channels: int) -> np.ndarray:
    """One image file -> ``(channels, resolution, resolution)`` uint8: its first frame,
    resized on the shorter side and centre-cropped. Raises on an unreadable file."""
    from PIL import Image

    with Image.open(path) as image:
        if image.format == "JPEG":  # decode at a reduced scale where the file allows it
            image.draft("RGB" if channels == 3 else "L", (resolution, resolution))
        image.seek(0)
        image.load()
        image = _to_mode(image, channels)
    width, height = image.size
    scale = resolution / min(width, height)
    size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
    if size != image.size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    image = image.crop((left, top, left + resolution, top + resolution))
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


class MappedImages:
    """A uint8 image array memory-mapped from the cache, indexed like a tensor."""

    device = torch.device("cpu")
    dtype = torch.uint8

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self.array.shape)

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, torch.Tensor):
            index = index.numpy()
        return torch.from_numpy(np.ascontiguousarray(self.array[index]))


@dataclass
class ImageSet:
    """Decoded images ``(N, C, R, R)`` uint8 (in memory or mapped), and labels if any."""

    images: torch.Tensor | MappedImages
    labels: torch.Tensor | None
    classes: list[str]
    skipped: list[str] = field(default_factory=list)
    cache: Path | None = None


def cache_key(root: Path, files: tuple[Path, ...], resolution: int, channels: int) -> str:
    """A digest of what the decoded array depends on: files (paths, sizes, mtimes) and size."""
    digest = hashlib.sha256(json.dumps(
        {"version": CACHE_VERSION, "resolution": resolution, "channels": channels,
         "background": BACKGROUND}, sort_keys=True).encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def load_images_cached(listing: Listing, resolution: int, channels: int, cache_root: Path,
                       name: str, max_memory_gb: float = 4.0,
                       max_unreadable: float = 0.1) -> ImageSet:
    """The listing's images, decoded (or read from the cache) at ``resolution``."""
    if resolution < 8 or channels not in (1, 3):
        raise ImageFolderError(f"dataset: resolution must be >= 8 and channels 1 or 3; got "
                               f"{resolution}, {channels}")
    if not listing.files:
        raise ImageFolderError(f"{name}: no image files under '{listing.root}' (looked for "
                               f"{', '.join(SUFFIXES)}, in subfolders too)")
    key = cache_key(listing.root, listing.files, resolution, channels)
    folder = Path(cache_root) / f"images-{name}-{resolution}px-{channels}c-{key}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (folder / "meta.json").is_file():
            _build_cache(listing, resolution, channels, folder, name, max_unreadable)
    meta = json.loads((folder / "meta.json").read_text())
    array = np.load(folder / "images.npy", mmap_mode="r")
    if array.nbytes <= max_memory_gb * 2**30:
        images: torch.Tensor | MappedImages = torch.from_numpy(np.array(array))
    else:
        log.info("%s: %.1f GB of images > dataset.max_memory_gb=%g: memory-mapped from %s",
                 name, array.nbytes / 2**30, max_memory_gb, folder)
        images = MappedImages(array)
    labels = None
    if (folder / "labels.npy").is_file():
        labels = torch.from_numpy(np.load(folder / "labels.npy"))
    if meta["skipped"]:
        _warn_skipped(name, listing.root, meta["skipped"], meta["files"])
    log.info("%s: %d images at %dpx from %s (cache %s)", name, len(images), resolution,
             listing.root, folder.name)
    return ImageSet(images, labels, meta["classes"], meta["skipped"], folder)


def _first_few(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def _warn_skipped(name: str, root: Path, skipped: list[str], total: int) -> None:
    warnings.warn(f"{name}: skipped {len(skipped)} of {total} files under '{root}' that could "
                  f"not be read as images: {_first_few(skipped)}", stacklevel=3)


def _decode_or_none(path: Path, resolution: int, channels: int) -> np.ndarray | None:
    try:
        return decode(path, resolution, channels)
    except Exception:  # noqa: BLE001 - truncated, corrupt, not an image: counted, skipped
        return None


def _build_cache(listing: Listing, resolution: int, channels: int, folder: Path, name: str,
                 max_unreadable: float) -> None:
    from tqdm.auto import tqdm

    n, shape = len(listing.files), (channels, resolution, resolution)
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # written as decoded, so a set larger than memory never has to fit in it
    out = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8,
                                    shape=(n, *shape))
    kept: list[int] = []
    skipped: list[str] = []
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool, tqdm(
            total=n, desc=f"decoding {name} ({resolution}px, once)", unit="img",
            mininterval=1.0) as bar:
        # PIL releases the GIL while it decodes and resizes: threads use every core
        for i, array in enumerate(pool.map(
                functools.partial(_decode_or_none, resolution=resolution, channels=channels),
                listing.files)):
            if array is None:
                skipped.append(str(listing.files[i].relative_to(listing.root)))
            else:
                out[len(kept)] = array
                kept.append(i)
            bar.update()
    out.flush()
    if not kept or len(skipped) > max_unreadable * n:
        del out
        shutil.rmtree(tmp, ignore_errors=True)
        raise ImageFolderError(
            f"{name}: {len(skipped)} of {n} files under '{listing.root}' could not be read as "
            f"images (more than dataset.max_unreadable={max_unreadable:g} of them), e.g. "
            f"{_first_few(skipped)}. Check the folder, or raise dataset.max_unreadable to "
            f"train on the rest")
    if len(kept) < n:  # compact into an array of the kept length (the header holds it)
        compact = np.lib.format.open_memmap(tmp / "kept.npy", mode="w+", dtype=np.uint8,
                                            shape=(len(kept), *shape))
        for start in range(0, len(kept), 4096):
            compact[start:start + 4096] = out[start:min(start + 4096, len(kept))]
        compact.flush()
        del compact
        os.replace(tmp / "kept.npy", tmp / "images.npy")
    del out
    if listing.labels is not None:
        np.save(tmp / "labels.npy", np.asarray(listing.labels, dtype=np.int64)[kept])
    (tmp / "meta.json").write_text(json.dumps({
        "root": str(listing.root), "files": n, "kept": len(kept), "skipped": skipped,
        "classes": list(listing.classes), "resolution": resolution, "channels": channels,
    }, indent=1))
    shutil.rmtree(folder, ignore_errors=True)  # a partial one from a killed build
    os.replace(tmp, folder)
