import os

import pytest
import torch

from gan_lightning import data
from gan_lightning.data import (
    DatasetUnavailableError,
    GANDataModule,
    InMemoryLoader,
    load_images,
    to_unit_range,
)


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


def test_loader_length_and_permutation():
    x = torch.arange(10).float()
    loader = InMemoryLoader(x, batch_size=4, seed=3)
    assert len(loader) == 3
    assert len(InMemoryLoader(x, batch_size=4, drop_last=True)) == 2
    epoch0 = torch.cat([b[0] for b in loader])
    assert sorted(epoch0.tolist()) == list(range(10))  # every item exactly once
    again = torch.cat([b[0] for b in loader])
    assert torch.equal(epoch0, again)  # same seed and epoch: same order
    loader.sampler.set_epoch(1)
    epoch1 = torch.cat([b[0] for b in loader])
    assert sorted(epoch1.tolist()) == list(range(10))
    assert not torch.equal(epoch0, epoch1)


def test_loader_keeps_pairs_aligned():
    x = torch.arange(20)
    loader = InMemoryLoader(x, x * 10, batch_size=6, seed=0)
    for a, b in loader:
        assert torch.equal(a * 10, b)


def test_missing_data_real_download_fails_cleanly(tmp_path):
    """No network here: torchvision's own download fails and nothing is left behind."""
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(DatasetUnavailableError) as info:
        load_images("mnist", root, download=True, source="torchvision")
    message = str(info.value)
    assert "mnist" in message and str(root) in message and "GAN_DATA_DIR" in message
    assert os.listdir(root) == []


def test_auto_falls_back_to_bundled_subset(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(data, "_download_atomically", offline)
    with pytest.warns(UserWarning, match="BUNDLED"):
        images, labels, source = load_images("mnist", tmp_path, source="auto")
    assert source == "bundled-5k"
    assert images.shape == (5000, 28, 28)
    assert torch.bincount(labels).tolist() == [500] * 10


def test_no_bundled_subset_for_other_datasets(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_download_atomically",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(DatasetUnavailableError, match="fashion_mnist"):
        load_images("fashion_mnist", tmp_path, source="auto")


def test_datamodule_shapes(tiny_data):
    dm = GANDataModule("mnist", str(tiny_data), batch_size=32, img_shape=[1, 28, 28])
    dm.setup("fit")
    real, labels = next(iter(dm.train_dataloader()))
    assert real.shape == (32, 1, 28, 28) and labels.shape == (32,)
    assert real.min() >= -1 and real.max() <= 1
    assert dm.source_used == "full"
    assert dm.reference_images(100).shape == (100, 1, 28, 28)


def test_datamodule_rejects_bad_values(tiny_data):
    with pytest.raises(ValueError, match="batch_size"):
        GANDataModule("mnist", str(tiny_data), batch_size=0)
    dm = GANDataModule("mnist", str(tiny_data), img_shape=[3, 32, 32])
    with pytest.raises(ValueError, match="img_shape"):
        dm.setup("fit")
