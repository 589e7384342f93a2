"""Datasets and their integrity: torchvision's layout, the download (atomic, bounded), the bundled
MNIST subset offline, and damaged files named before training."""

import os
import time

import pytest
import torch

from conftest import write_idx_dataset
from gan_lightning import datasets
from gan_lightning.datasets import DatasetCorruptError, DatasetUnavailableError, load_images
from gan_lightning.pixels import to_unit_range


def test_load_images_reads_torchvision_layout(tiny_data):
    images, labels, source = load_images("mnist", tiny_data, train=True, download=False)
    assert source == "full"
    assert images.dtype == torch.uint8 and images.shape == (256, 28, 28)
    assert labels.shape == (256,) and int(labels.max()) <= 9
    test_images, _, _ = load_images("mnist", tiny_data, train=False, download=False)
    assert test_images.shape == (128, 28, 28)

def test_to_unit_range():
    x = to_unit_range(torch.tensor([[[0, 255]]], dtype=torch.uint8))
    assert x.shape == (1, 1, 1, 2)
    assert x.flatten().tolist() == [-1.0, 1.0]
    rgb = to_unit_range(torch.zeros(2, 32, 32, 3, dtype=torch.uint8))
    assert rgb.shape == (2, 3, 32, 32)

def test_missing_data_real_download_fails_cleanly(tmp_path):
    """No network here: torchvision's own download really runs, fails, and leaves nothing.

    The one test of the real download path (the others monkeypatch it away).
    """
    root = tmp_path / "empty"
    root.mkdir()
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailableError) as info:
        load_images("mnist", root, download=True, source="torchvision")
    assert time.perf_counter() - start < 60  # bounded by DOWNLOAD_TIMEOUT_S, not a hang
    message = str(info.value)
    assert "mnist" in message and str(root / "MNIST") in message and "GAN_DATA_DIR" in message
    assert "download failed" in message
    assert os.listdir(root) == []  # no scratch folder, no partial MNIST/

def offline(*args, **kwargs):
    raise OSError("no network")

def test_missing_data_offline_names_dataset_and_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_download_atomically", offline)
    root = tmp_path / "root"
    root.mkdir()
    (root / "unrelated.txt").write_text("keep me")
    with pytest.raises(DatasetUnavailableError) as info:
        load_images("mnist", root, download=True, source="torchvision")
    message = str(info.value)
    assert message.startswith("mnist:")
    assert f"'{root / 'MNIST'}'" in message
    assert "OSError: no network" in message and "dataset.source=bundled" in message
    assert sorted(os.listdir(root)) == ["unrelated.txt"]

def test_missing_data_without_download_does_not_try(tmp_path, monkeypatch):
    def must_not_download(*args, **kwargs):
        raise AssertionError("download attempted with download=False")

    monkeypatch.setattr(datasets, "_download_atomically", must_not_download)
    with pytest.raises(DatasetUnavailableError, match="fashion_mnist") as info:
        load_images("fashion_mnist", tmp_path, download=False, source="torchvision")
    assert str(tmp_path / "FashionMNIST") in str(info.value)
    assert "dataset.source=bundled" not in str(info.value)  # MNIST only

def test_fashion_mnist_reads_the_same_layout(tmp_path):
    write_idx_dataset(tmp_path, folder="FashionMNIST", n_train=40, n_test=20)
    images, labels, source = load_images("fashion_mnist", tmp_path, download=False)
    assert source == "full" and images.shape == (40, 28, 28) and labels.shape == (40,)
    # no MNIST folder: the fashion files are not read for mnist
    with pytest.raises(DatasetUnavailableError):
        load_images("mnist", tmp_path, download=False, source="torchvision")

def test_tiny_data_in_unit_range(tiny_data):
    images, _, _ = load_images("mnist", tiny_data, download=False)
    x = to_unit_range(images)
    assert x.dtype == torch.float32 and x.shape == (256, 1, 28, 28)
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    # exactly Normalize(0.5, 0.5) of ToTensor()
    assert torch.allclose(x[:, 0], (images.float() / 255 - 0.5) / 0.5, atol=1e-6)

def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        load_images("svhn", tmp_path)
    with pytest.raises(ValueError, match="source"):
        load_images("mnist", tmp_path, source="internet")
    with pytest.raises(ValueError, match="mnist only"):
        load_images("cifar10", tmp_path, source="bundled")

def test_auto_falls_back_to_bundled_subset(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_download_atomically", offline)
    with pytest.warns(UserWarning, match="BUNDLED"):
        images, labels, source = load_images("mnist", tmp_path, source="auto")
    assert source == "bundled-5k"
    assert images.shape == (5000, 28, 28)
    assert torch.bincount(labels).tolist() == [500] * 10

def test_no_bundled_subset_for_other_datasets(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_download_atomically",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(DatasetUnavailableError, match="fashion_mnist"):
        load_images("fashion_mnist", tmp_path, source="auto")

@pytest.mark.parametrize("damage", ["truncate", "header"])
def test_corrupt_files_fail_clearly_before_training(damage, tmp_path):
    from conftest import run_train

    root = write_idx_dataset(tmp_path / "data")
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    raw = images.read_bytes()
    images.write_bytes(raw[:-100] if damage == "truncate" else b"\x00\x00\x09\x99" + raw[4:])
    with pytest.raises(DatasetCorruptError, match="train-images-idx3-ubyte"):
        load_images("mnist", root, train=True, download=True, source="auto")
    proc = run_train(["trainer.max_epochs=1"], root, tmp_path / "out", check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert ("truncated or corrupt" if damage == "truncate" else "bad header") in text
    assert not list((tmp_path / "out").glob("**/last.ckpt"))

def test_a_damaged_cifar_file_is_named_not_taken_for_missing(tmp_path):
    from conftest import write_cifar

    root = write_cifar(tmp_path / "data")  # random bytes: no file has torchvision's md5
    with pytest.raises(DatasetCorruptError, match="data_batch_1 is damaged: its md5"):
        load_images("cifar10", root, train=True, download=True, source="auto")
