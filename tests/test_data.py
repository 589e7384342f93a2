import os
import time

import pytest
import torch

from conftest import write_idx_dataset
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


def test_loader_without_shuffle_and_drop_last():
    x = torch.arange(10)
    plain = [b[0].tolist() for b in InMemoryLoader(x, batch_size=4, shuffle=False)]
    assert plain == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dropped = [b[0] for b in InMemoryLoader(x, batch_size=4, drop_last=True, seed=1)]
    assert [len(b) for b in dropped] == [4, 4]
    assert len(set(torch.cat(dropped).tolist())) == 8  # still a permutation, last 2 dropped


def test_loader_order_depends_on_seed_and_epoch_only():
    x = torch.arange(100)
    a, b = InMemoryLoader(x, batch_size=32, seed=7), InMemoryLoader(x, batch_size=32, seed=7)
    b.sampler.set_epoch(3)
    a.sampler.set_epoch(3)
    assert torch.equal(torch.cat([t[0] for t in a]), torch.cat([t[0] for t in b]))
    c = InMemoryLoader(x, batch_size=32, seed=8)
    c.sampler.set_epoch(3)
    assert not torch.equal(torch.cat([t[0] for t in a]), torch.cat([t[0] for t in c]))


def test_loader_keeps_pairs_aligned():
    x = torch.arange(20)
    loader = InMemoryLoader(x, x * 10, batch_size=6, seed=0)
    for a, b in loader:
        assert torch.equal(a * 10, b)


@pytest.mark.parametrize("chunk_bytes", [1, 7 * 8 * 40, 2**30], ids=["batch", "7", "all"])
@pytest.mark.parametrize("drop_last", [False, True])
def test_loader_gathers_in_chunks_the_batches_of_one_permutation(chunk_bytes, drop_last):
    """Rows are gathered a chunk of batches at a time: the batches are those of the epoch's
    permutation, in order, whatever the chunk size (one batch, 7 of the 13, all)."""
    # rows of 40 bytes: 8 float32 values and an int64 label
    x = torch.arange(100).float().repeat_interleave(8).view(100, 8)
    labels = torch.arange(100) * 10
    loader = InMemoryLoader(x, labels, batch_size=8, seed=4, drop_last=drop_last)
    loader.chunk_bytes = chunk_bytes
    loader.sampler.set_epoch(2)
    order = torch.randperm(100, generator=torch.Generator().manual_seed(4 + 2))
    batches = list(loader)
    assert len(batches) == len(loader) == (12 if drop_last else 13)
    for i, (images, label) in enumerate(batches):
        rows = order[i * 8 : (i + 1) * 8]
        assert torch.equal(images, x[rows]) and torch.equal(label, labels[rows])


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
    monkeypatch.setattr(data, "_download_atomically", offline)
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

    monkeypatch.setattr(data, "_download_atomically", must_not_download)
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


def test_datamodule_falls_back_to_bundled_and_references_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_download_atomically", offline)
    dm = GANDataModule("mnist", str(tmp_path), batch_size=500, img_shape=[1, 28, 28])
    with pytest.warns(UserWarning, match="bundled-5k"):
        dm.setup("fit")
    assert dm.source_used == "bundled-5k" and len(dm.train_dataloader()) == 10
    assert dm.reference_images(7).shape == (7, 1, 28, 28)


@pytest.mark.parametrize("damage", ["truncate", "header"])
def test_corrupt_files_fail_clearly_before_training(damage, tmp_path):
    from conftest import run_train, write_idx_dataset
    from gan_lightning.data import DatasetCorruptError

    root = write_idx_dataset(tmp_path / "data")
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    data = images.read_bytes()
    images.write_bytes(data[:-100] if damage == "truncate" else b"\x00\x00\x09\x99" + data[4:])
    with pytest.raises(DatasetCorruptError, match="train-images-idx3-ubyte"):
        load_images("mnist", root, train=True, download=True, source="auto")
    proc = run_train(["trainer.max_epochs=1"], root, tmp_path / "out", check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert ("truncated or corrupt" if damage == "truncate" else "bad header") in text
    assert not list((tmp_path / "out").glob("**/last.ckpt"))


def test_a_damaged_cifar_file_is_named_not_taken_for_missing(tmp_path):
    from conftest import write_cifar
    from gan_lightning.data import DatasetCorruptError

    root = write_cifar(tmp_path / "data")  # random bytes: no file has torchvision's md5
    with pytest.raises(DatasetCorruptError, match="data_batch_1 is damaged: its md5"):
        load_images("cifar10", root, train=True, download=True, source="auto")


@pytest.mark.parametrize("kind", ["images", "gaussian2d"])
def test_batches_already_on_the_training_device_are_not_moved(tiny_data, kind):
    """A CPU run's batches are returned as they are (Lightning's default copies nothing here
    either, but walks the batch every step); anything else takes Lightning's default. Both
    datamodules that serve ``InMemoryLoader`` batches do this."""
    from gan_lightning.data import GaussianDataModule

    dm = (GANDataModule("mnist", str(tiny_data), batch_size=4) if kind == "images"
          else GaussianDataModule(batch_size=4))
    batch = (torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.zeros(4, dtype=torch.long))
    assert dm.transfer_batch_to_device(batch, torch.device("cpu"), 0) is batch
    moved = dm.transfer_batch_to_device([batch[0], batch[1]], torch.device("cpu"), 0)
    assert isinstance(moved, list) and torch.equal(moved[0], batch[0])
    as_dict = dm.transfer_batch_to_device({"x": batch[0]}, torch.device("cpu"), 0)
    assert torch.equal(as_dict["x"], batch[0])
