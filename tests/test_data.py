"""The datamodules: batches of the configured shape, the bundled fallback, device transfer."""

from collections import Counter

import pytest
import torch

from gan_lightning import datasets
from gan_lightning.data import GANDataModule, GaussianDataModule


def offline(*args, **kwargs):
    raise OSError("no network")


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
    monkeypatch.setattr(datasets, "_download_atomically", offline)
    dm = GANDataModule("mnist", str(tmp_path), batch_size=500, img_shape=[1, 28, 28])
    with pytest.warns(UserWarning, match="bundled-5k"):
        dm.setup("fit")
    assert dm.source_used == "bundled-5k" and len(dm.train_dataloader()) == 10
    assert dm.reference_images(7).shape == (7, 1, 28, 28)

def test_validation_images_are_held_out_of_training(tiny_data):
    """dataset.validation=N takes a fixed draw of N images out of the training split, the same
    whatever the run's seed and storage; training keeps the rest in their order, labels stay
    with their images, and the classifier (labelled_splits) still gets the whole split."""
    whole = GANDataModule("mnist", str(tiny_data), validation=0)
    auto = GANDataModule("mnist", str(tiny_data))  # auto: a 256-image split is too small
    held = [GANDataModule("mnist", str(tiny_data), validation=40, seed=seed, storage=storage)
            for seed, storage in ((1, "float"), (2, "uint8"))]
    for dm in (whole, auto, *held):
        dm.setup()
    assert auto.held_out is None and auto.validation_images() is None
    assert len(auto.images) == len(whole.images) == 256
    a, b = held
    assert len(a.images) == 216 and a.validation_images().shape == (40, 1, 28, 28)
    assert torch.equal(a.validation_images(), b.validation_images())
    assert torch.equal(a.validation_images(7), a.validation_images()[:7])
    def pairs(images, labels):  # (image bytes, label): a multiset, as images may repeat
        return [(bytes(x.numpy()), int(y)) for x, y in zip(images, labels)]

    kept, out = pairs(a.images, a.labels), pairs(*a.held_out)
    assert Counter(kept) + Counter(out) == Counter(pairs(whole.images, whole.labels))
    rest = iter(pairs(whole.images, whole.labels))
    assert all(pair in rest for pair in kept)  # the rest, in their order (a subsequence)
    images, labels, *_ = a.labelled_splits()
    assert torch.equal(images, whole.images) and torch.equal(labels, whole.labels)


def test_validation_sizes_that_cannot_work_are_refused(tiny_data):
    for bad in (-1, "some", 1.5):
        with pytest.raises(ValueError, match="dataset.validation must be auto"):
            GANDataModule("mnist", str(tiny_data), validation=bad)
    dm = GANDataModule("mnist", str(tiny_data), validation=256)
    with pytest.raises(ValueError, match="would hold out all 256"):
        dm.setup()


@pytest.mark.mnist
def test_auto_holds_out_5000_of_the_full_mnist(shared_mnist):
    dm = GANDataModule("mnist", str(shared_mnist), download=False, source="torchvision")
    dm.setup()
    assert len(dm.images) == 55_000 and dm.held_out_size == 5_000


@pytest.mark.parametrize("kind", ["images", "gaussian2d"])
def test_batches_already_on_the_training_device_are_not_moved(tiny_data, kind):
    """A CPU run's batches are returned as they are (Lightning's default copies nothing here
    either, but walks the batch every step); anything else takes Lightning's default. Both
    datamodules that serve ``InMemoryLoader`` batches do this."""
    dm = (GANDataModule("mnist", str(tiny_data), batch_size=4) if kind == "images"
          else GaussianDataModule(batch_size=4))
    batch = (torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.zeros(4, dtype=torch.long))
    assert dm.transfer_batch_to_device(batch, torch.device("cpu"), 0) is batch
    moved = dm.transfer_batch_to_device([batch[0], batch[1]], torch.device("cpu"), 0)
    assert isinstance(moved, list) and torch.equal(moved[0], batch[0])
    as_dict = dm.transfer_batch_to_device({"x": batch[0]}, torch.device("cpu"), 0)
    assert torch.equal(as_dict["x"], batch[0])
