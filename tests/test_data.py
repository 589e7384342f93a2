"""The datamodules: batches of the configured shape, the bundled fallback, device transfer."""

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
