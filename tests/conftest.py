"""Fixtures: tiny torchvision-layout datasets written per test, the real config, shared MNIST."""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict
from PIL import Image

import gan_lightning  # noqa: F401  (registers the resolvers conf/ uses)

REPO = Path(__file__).resolve().parents[1]
MNIST_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def write_idx_dataset(root: Path, folder: str = "MNIST", n_train: int = 256, n_test: int = 128,
                      seed: int = 0) -> Path:
    """Write a tiny dataset in torchvision's raw MNIST layout: four uncompressed IDX files.

    Images are digit-like strokes: a bright bar whose angle and position depend on the label.
    """
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for train, n in ((True, n_train), (False, n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = np.zeros((n, 28, 28), np.uint8)
        yy, xx = np.mgrid[0:28, 0:28]
        for i, label in enumerate(labels):
            angle = label * np.pi / 10 + rng.normal(0, 0.05)
            cx, cy = 14 + rng.normal(0, 1.5), 14 + rng.normal(0, 1.5)
            dist = np.abs((xx - cx) * np.sin(angle) - (yy - cy) * np.cos(angle))
            images[i] = np.clip(255 * (dist < 2.0) * ((xx - cx) ** 2 + (yy - cy) ** 2 < 100), 0,
                                255)
        image_file, label_file = MNIST_FILES[train]
        (raw / image_file).write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / label_file).write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
    return root


def write_cifar(root: Path, n: int = 40, seed: int = 0) -> Path:
    """A tiny CIFAR-10 in torchvision's python layout (pickled batches)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": rng.integers(0, 10, n).tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    return Path(root)


@pytest.fixture
def tiny_data(tmp_path_factory) -> Path:
    """A data root with a 256/128-image MNIST in torchvision's raw layout."""
    return write_idx_dataset(tmp_path_factory.mktemp("data"))


def compose_cfg(overrides: list[str], data_dir: Path, out_dir: Path | None = None) -> DictConfig:
    """The real config composed with ``overrides``, as ``train.py``'s task function receives it.

    ``compose_cfg(overrides, tmp_path)`` writes a tiny MNIST to ``tmp_path/data`` (once) and
    puts the run folder at ``tmp_path/out``; ``compose_cfg(overrides, data_dir, out_dir)`` uses
    the given data root and run folder. ``paths.output_dir`` is ``${hydra:runtime.output_dir}``,
    which only resolves inside a Hydra run, so it is set explicitly; the ``hydra`` node is
    dropped as Hydra drops it for the task (``compose_hydra_cfg`` keeps it).
    """
    if out_dir is None:
        tmp = Path(data_dir)
        data_dir, out_dir = tmp / "data", tmp / "out"
        if not (data_dir / "MNIST" / "raw" / MNIST_FILES[True][0]).is_file():
            write_idx_dataset(data_dir)
    cfg = compose_hydra_cfg([f"paths.data_dir={data_dir}", f"paths.output_root={out_dir}",
                             *overrides])
    with open_dict(cfg):
        del cfg["hydra"]
        cfg.paths.output_dir = str(out_dir)
    return cfg


def compose_hydra_cfg(overrides: list[str]) -> DictConfig:
    """The real config with its ``hydra`` node (``return_hydra_config=True``), unresolved."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


#: overrides that make a run on the tiny data fast, without metrics ...
FAST_NO_METRICS = ["trainer.max_epochs=1", "dataset.batch_size=32",
                   "trainer.log_every_n_steps=1", "trainer.enable_model_summary=false",
                   "callbacks.progress_bar.refresh_rate=0"]
NO_METRICS = [*FAST_NO_METRICS, "metrics=none"]
#: ... and with small, quick metrics
FAST = [*FAST_NO_METRICS, "metrics.fid.num_fake=128", "metrics.fid.num_real=128",
        "metrics.is.num_fake=128", "metrics.precision_recall.num_fake=64",
        "metrics.precision_recall.num_real=64", "+metrics.classifier.epochs=1"]


def run_train(args: list[str], data_dir: Path | str, out_root: Path, timeout: int = 300,
              check: bool = True, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess:
    """``python train.py <args>`` in a subprocess, outputs under ``out_root`` (``env``: the
    process's environment instead of this one's)."""
    env = {**(env or os.environ), "GAN_DATA_DIR": str(data_dir), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args, f"paths.output_root={out_root}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-5000:]}")
    return proc


def backticked_rows(text: str, heading: str) -> dict[str, list[str]]:
    """The rows of the Markdown table under ``## heading`` whose first cell is a `name`:
    ``{name: the row's other cells}`` (rows of at least three cells)."""
    section = text.split(f"\n## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `(\w+)` \| (.*) \|$", line)
        if match and " | " in match.group(2):
            rows[match.group(1)] = match.group(2).split(" | ")
    return rows


def committed_studies() -> list[str]:
    """The committed studies with a report, as paths under experiments/ (``conv_mnist``,
    ``conv_mnist/recipe``)."""
    return sorted(p.parent.relative_to(REPO / "experiments").as_posix()
                  for p in REPO.glob("experiments/**/report.json"))


def find_shared_mnist() -> Path | None:
    candidates = [os.environ.get("GAN_DATA_DIR"), "/work/shared/data",
                  REPO.parent / "shared" / "data"]
    for c in candidates:
        if c and (Path(c) / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
            return Path(c).resolve()
    return None


@pytest.fixture
def shared_mnist() -> Path:
    """The full MNIST root (``$GAN_DATA_DIR``, ``/work/shared/data`` or ``../shared/data``);
    skips the test when none has ``MNIST/raw/train-images-idx3-ubyte``."""
    root = find_shared_mnist()
    if root is None:
        pytest.skip("full MNIST not found (set GAN_DATA_DIR or provide ../shared/data)")
    return root


def photo(rng, width, height, mode="RGB"):
    bands = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    array = rng.integers(0, 256, (height, width, bands), dtype=np.uint8)
    return Image.fromarray(array.squeeze(-1) if bands == 1 else array, mode)


def write_image_folder(root, per_class=10, classes=("cats", "dogs"), bad=()):
    """Class subfolders of small PNG and JPEG files of mixed sizes and modes, plus ``bad``."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            size = (int(rng.integers(24, 90)), int(rng.integers(24, 90)))
            suffix = ".png" if i % 2 else ".jpg"
            photo(rng, *size).save(folder / f"{i:03d}{suffix}")
    special = root / classes[0]
    photo(rng, 40, 30, "RGBA").save(special / "rgba.png")
    photo(rng, 33, 47, "L").save(special / "gray.png")
    Image.fromarray(rng.integers(0, 65536, (30, 30), dtype=np.uint16)).save(special / "deep.png")
    photo(rng, 40, 40).convert("P").save(special / "palette.gif")
    for name in bad:
        path = root / classes[-1] / name
        if name.startswith("truncated"):
            buffer = io.BytesIO()
            photo(rng, 64, 64).save(buffer, "JPEG")
            path.write_bytes(buffer.getvalue()[:300])
        else:
            path.write_bytes(b"not an image at all")
    return root


def write_celeba(root: Path, n: int = 12) -> Path:
    """A tiny CelebA in torchvision's layout (``root/celeba``): aligned-face JPEGs and the five
    text files its ``CelebA`` class reads. torchvision checks the real files' md5 sums; the
    tests that use this patch that check."""
    folder = Path(root) / "celeba"
    images = folder / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for name in names:
        photo(rng, 178, 218).save(images / name)
    count = f"{n}\n"
    (folder / "list_eval_partition.txt").write_text(
        "".join(f"{name} {i % 3}\n" for i, name in enumerate(names)))
    (folder / "identity_CelebA.txt").write_text(
        "".join(f"{name} {i + 1}\n" for i, name in enumerate(names)))
    (folder / "list_bbox_celeba.txt").write_text(
        count + "image_id x_1 y_1 width height\n"
        + "".join(f"{name} 1 2 3 4\n" for name in names))
    (folder / "list_landmarks_align_celeba.txt").write_text(
        count + "lefteye_x lefteye_y\n" + "".join(f"{name} 69 109\n" for name in names))
    (folder / "list_attr_celeba.txt").write_text(
        count + "Smiling Young\n" + "".join(f"{name} 1 -1\n" for name in names))
    return folder


def fake_run(sweep, num, overrides, status="ok", fid=None, losses=(1.0, 1.0), steps=20,
             events=True, extra=None):
    """A job folder as train.py leaves it: metrics.json, .hydra/overrides.yaml, scalars;
    ``extra`` adds keys to metrics.json."""
    from torch.utils.tensorboard import SummaryWriter

    name = f"{num}_" + ",".join(overrides)
    run = sweep / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if status is not None:
        record = {"status": status, "overrides": overrides, "wall_time_s": 10.0 + num,
                  "g_steps_per_s": 100.0 + num, "epochs": 2.0,
                  "final": {"loss_d": losses[0], "loss_g": losses[1]}}
        if fid is not None:
            record["fid"] = {"final": fid[-1], "best": min(fid), "best_epoch":
                             fid.index(min(fid)) + 1}
            record["metrics_history"] = [{"epoch": e + 1, "fid": f} for e, f in enumerate(fid)]
        (run / "metrics.json").write_text(json.dumps(record | (extra or {})))
    if events:
        writer = SummaryWriter(str(run / "tensorboard"))
        for step in range(1, steps + 1):
            writer.add_scalar("train/loss_d", losses[0] + 0.01 * step, step)
            writer.add_scalar("train/loss_g", losses[1] - 0.01 * step, step)
        writer.close()
    return run
