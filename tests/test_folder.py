"""``dataset=folder`` and ``dataset=celeba``: image files decoded once into a uint8 cache."""

import json
import os
import subprocess
import sys
import time
import warnings

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import NO_METRICS, REPO, compose_cfg, photo
from conftest import write_image_folder as write_folder
from gan_lightning import images as images_mod
from gan_lightning.images import (
    ImageFolderError,
    MappedImages,
    decode,
    list_images,
    load_images_cached,
)


@pytest.fixture
def folder(tmp_path):
    return write_folder(tmp_path / "photos", bad=("truncated.jpg", "garbage.png"))


def test_every_mode_decodes_to_the_resolution(tmp_path):
    root = write_folder(tmp_path / "f", per_class=1)
    for name in ("rgba.png", "gray.png", "deep.png", "palette.gif", "000.jpg"):
        for channels in (3, 1):
            array = decode(root / "cats" / name, 32, channels)
            assert array.shape == (channels, 32, 32) and array.dtype == np.uint8, name
    # transparency becomes the white background; 16-bit white becomes 8-bit white
    Image.new("RGBA", (20, 10), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert (decode(tmp_path / "clear.png", 8, 3) == 255).all()
    Image.fromarray(np.full((9, 9), 65535, dtype=np.uint16)).save(tmp_path / "white16.png")
    assert (decode(tmp_path / "white16.png", 8, 1) == 255).all()
    # the shorter side is resized to the resolution and the longer one centre-cropped
    wide = np.zeros((10, 30, 3), dtype=np.uint8)
    wide[:, 10:20] = 255
    Image.fromarray(wide).save(tmp_path / "wide.png")
    assert (decode(tmp_path / "wide.png", 10, 3) == 255).all()


def test_class_subfolders_become_labels_and_a_flat_folder_has_none(folder, tmp_path):
    listing = list_images(folder)
    assert listing.classes == ("cats", "dogs") and len(listing.files) == 2 * 10 + 4 + 2
    assert listing.labels.count(0) == 14 and listing.labels.count(1) == 12
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        photo(np.random.default_rng(i), 20, 20).save(flat / f"{i}.png")
    assert list_images(flat).labels is None


def test_the_cache_is_reused_and_rebuilt_when_a_file_changes(folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = load_images_cached(list_images(folder), 32, 3, cache, "photos")
    (warning,) = [w for w in caught if "skipped" in str(w.message)]
    assert "skipped 2 of 26" in str(warning.message)
    assert "garbage.png" in str(warning.message) and "truncated.jpg" in str(warning.message)
    assert first.images.shape == (24, 3, 32, 32) and first.images.dtype == torch.uint8
    assert first.labels.tolist() == [0] * 14 + [1] * 10 and first.classes == ["cats", "dogs"]

    decoded = []

    def counting(path, *args):
        decoded.append(path)
        return real_decode(path, *args)

    real_decode = images_mod.decode
    monkeypatch.setattr(images_mod, "decode", counting)
    again = load_images_cached(list_images(folder), 32, 3, cache, "photos")
    assert decoded == []  # read from the cache
    assert torch.equal(again.images, first.images) and again.cache == first.cache
    # a changed file (its size and mtime) is another cache entry: everything is decoded anew
    changed = folder / "dogs" / "000.jpg"
    photo(np.random.default_rng(9), 50, 50).save(changed)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rebuilt = load_images_cached(list_images(folder), 32, 3, cache, "photos")
    assert len(decoded) == 26
    assert rebuilt.cache != first.cache and not torch.equal(rebuilt.images, first.images)
    assert not list(cache.glob("*.tmp*"))


def test_a_mostly_unreadable_or_empty_folder_is_refused(tmp_path):
    bad = tmp_path / "bad"
    write_folder(bad, per_class=1, bad=("a.png", "b.png", "c.jpg", "d.jpg", "truncated.jpg"))
    with pytest.raises(ImageFolderError, match=f"5 of 11 files under '{bad}'"):
        load_images_cached(list_images(bad), 16, 3, tmp_path / "cache", "bad")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageFolderError, match="no image files under"):
        load_images_cached(list_images(tmp_path / "empty"), 16, 3, tmp_path / "cache", "e")
    with pytest.raises(ImageFolderError, match="is not a folder"):
        list_images(tmp_path / "missing")


def test_a_set_beyond_the_memory_budget_is_mapped(folder, tmp_path):
    in_memory = load_images_cached(list_images(folder), 16, 3, tmp_path, "p")
    mapped = load_images_cached(list_images(folder), 16, 3, tmp_path, "p", max_memory_gb=1e-9)
    assert isinstance(mapped.images, MappedImages) and mapped.images.shape == (24, 3, 16, 16)
    index = torch.tensor([5, 0, 23, 5])
    assert torch.equal(mapped.images[index], in_memory.images[index])


def fit(overrides, folder, out):
    cfg = compose_cfg([*overrides, "dataset=folder", f"dataset.path={folder}",
                       "dataset.batch_size=8", "max_g_steps=2"], folder, out)
    from gan_lightning.train import build

    L.seed_everything(0, verbose=False)
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    return datamodule, module, trainer


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_dcgan_trains_on_a_folder(resolution, folder, tmp_path):
    datamodule, module, _ = fit([*NO_METRICS, f"dataset.resolution={resolution}"], folder,
                                tmp_path)
    assert module.g_step == 2 and datamodule.images.dtype == torch.uint8
    assert module.fixed_samples().shape[1:] == (3, resolution, resolution)
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_cgan_trains_on_the_folder_labels(folder, tmp_path):
    _, module, _ = fit([*NO_METRICS, "model=cgan", "dataset.resolution=32"], folder, tmp_path)
    assert module.num_classes == 2 and module.g_step == 2


def test_a_labelled_folder_gets_the_classifier_metrics(folder, tmp_path):
    datamodule, module, trainer = fit(
        ["dataset.resolution=32", "trainer.max_epochs=1", "metrics.fid.num_fake=16",
         "metrics.fid.num_real=16", "metrics.is.num_fake=16",
         "metrics.precision_recall.num_fake=8", "metrics.precision_recall.num_real=8",
         "+metrics.classifier.epochs=1", "callbacks.progress_bar.refresh_rate=0"],
        folder, tmp_path)
    evaluator = next(c for c in trainer.callbacks if hasattr(c, "quality"))
    assert evaluator.feature == "classifier" and np.isfinite(evaluator.history[-1]["fid"])
    assert list(datamodule.cache_folder.glob("reference-classifier-*.pt"))


def test_an_unlabelled_folder_gets_inception_features(tmp_path, monkeypatch):
    from test_metrics import random_inception_weights

    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(12):
        photo(np.random.default_rng(i), 30, 40).save(flat / f"{i}.jpg")
    weights = tmp_path / "inception.pth"
    random_inception_weights(weights, monkeypatch)
    metrics = ["dataset.resolution=32", "trainer.max_epochs=1",
               f"metrics.fid.weights_path={weights}", "metrics.fid.num_fake=8",
               "metrics.fid.num_real=8", "metrics.is.num_fake=8",
               "metrics.precision_recall.enabled=false", "callbacks.progress_bar.refresh_rate=0"]
    datamodule, _, trainer = fit(metrics, flat, tmp_path / "a")
    evaluator = next(c for c in trainer.callbacks if hasattr(c, "quality"))
    assert evaluator.feature == "inception" and np.isfinite(evaluator.history[-1]["fid"])
    (reference,) = datamodule.cache_folder.glob("reference-inception-*.pt")
    # the next run reads the reference features from the cache instead of extracting them
    stamp = reference.stat().st_mtime_ns
    _, _, trainer = fit(metrics, flat, tmp_path / "b")
    again = next(c for c in trainer.callbacks if hasattr(c, "quality"))
    assert reference.stat().st_mtime_ns == stamp
    assert again.history[-1]["fid"] == evaluator.history[-1]["fid"]


def test_celeba_offline_fails_in_seconds_naming_the_folder(tmp_path):
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "train.py", "dataset=celeba", f"paths.data_dir={tmp_path}",
         f"paths.output_root={tmp_path / 'out'}", "metrics=none"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and time.perf_counter() - start < 60
    assert f"no dataset files in '{tmp_path / 'celeba'}'" in proc.stderr
    assert "GAN_DATA_DIR" in proc.stderr and "Traceback" not in proc.stderr


def test_train_py_on_a_folder_shows_rgb_grids(folder, tmp_path):
    """The README's command: ``python train.py dataset=folder dataset.path=...`` (cut to one
    short epoch and small metrics): a 64 px DCGAN, RGB grids in samples.png and TensorBoard."""
    proc = subprocess.run(
        [sys.executable, "train.py", "dataset=folder", f"dataset.path={folder}",
         f"paths.data_dir={tmp_path}", f"paths.output_root={tmp_path / 'out'}",
         "trainer.max_epochs=1", "dataset.batch_size=8", "metrics.fid.num_fake=16",
         "metrics.fid.num_real=16", "metrics.is.num_fake=16",
         "metrics.precision_recall.num_fake=8", "metrics.precision_recall.num_real=8",
         "+metrics.classifier.epochs=1", "callbacks.progress_bar.refresh_rate=0"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record_path,) = (tmp_path / "out").rglob("metrics.json")
    record = json.loads(record_path.read_text())
    assert record["status"] == "ok" and record["data_source"].startswith("folder:")
    grid = Image.open(record_path.parent / "samples.png")
    assert grid.mode == "RGB" and grid.size[0] > 8 * 64
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = {p.parent for p in record_path.parent.rglob("events.out.tfevents.*")}
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    assert "samples/fixed_noise" in accumulator.Tags()["images"]
    # gan-sample and the progress GIF from the run's files
    from gan_lightning.sample import main as gan_sample

    assert gan_sample([f"ckpt={record_path.parent / 'last.ckpt'}", "n=16",
                       f"out={tmp_path / 'drawn.png'}"]) == 0
    drawn = Image.open(tmp_path / "drawn.png")
    assert drawn.mode == "RGB" and drawn.size[0] > 8 * 64
    assert gan_sample([f"run={record_path.parent}", f"out={tmp_path / 'progress.gif'}"]) == 0
    assert Image.open(tmp_path / "progress.gif").convert("RGB").size == grid.size
