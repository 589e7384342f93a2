"""Runs on the full MNIST (``$GAN_DATA_DIR`` or ``../shared/data``); skipped without it."""

import json

import pytest
import torch
from PIL import Image

from conftest import run_train

pytestmark = pytest.mark.mnist
QUIET = ["callbacks.progress_bar.refresh_rate=0", "trainer.enable_model_summary=false"]


def test_reports_sgd_setting_collapses_within_two_epochs(shared_mnist, tmp_path):
    run_train(["optimizer=sgd", "trainer.max_epochs=3", "metrics=none", *QUIET], shared_mnist,
              tmp_path)
    (path,) = tmp_path.glob("runs/*/*/metrics.json")
    metrics = json.loads(path.read_text())
    assert metrics["status"] == "collapsed"
    # D saturates within two epochs: the monitor stops the run at the 10th saturated log point
    # in a row (patience 10, a log point every 50 G steps), so the first came 9 x 50 earlier
    first_saturated = metrics["g_steps"] - 9 * 50
    assert first_saturated <= 2 * 938 and metrics["epochs"] <= 3
    assert "generator step" in metrics["message"]
    assert "optimizer.lr=0.1" in metrics["message"]
    assert (path.parent / "last.ckpt").is_file()  # the collapsed run's checkpoint is kept


def test_default_run_is_healthy(shared_mnist, tmp_path):
    """One epoch of the default settings (metrics off, ~10 s): healthy, on the full set."""
    run_train(["trainer.max_epochs=1", "metrics=none", *QUIET], shared_mnist, tmp_path)
    (path,) = tmp_path.glob("runs/*/*/metrics.json")
    metrics = json.loads(path.read_text())
    assert metrics["status"] == "ok" and metrics["data_source"] == "full"
    # 860 batches of 64: 55,000 images, 5,000 held out (dataset.validation=auto)
    assert metrics["g_steps"] == 860 and metrics["warnings"] == []
    grid = torch.tensor(list(Image.open(path.parent / "samples.png").convert("L").getdata()))
    assert (grid < 64).float().mean() > 0.5  # MNIST-like: mostly dark background


@pytest.mark.slow
def test_default_run_with_metrics_draws_digits(shared_mnist, tmp_path):
    """The same with the default metrics (FID/IS/PR on 10,000 samples): ~2 minutes."""
    run_train(["trainer.max_epochs=1", *QUIET], shared_mnist, tmp_path)
    (path,) = tmp_path.glob("runs/*/*/metrics.json")
    metrics = json.loads(path.read_text())
    assert metrics["status"] == "ok" and metrics["data_source"] == "full"
    assert metrics["g_steps"] == 938 and metrics["warnings"] == []
    assert metrics["metrics_protocol"]["classifier_test_accuracy"] >= 0.99
    # visible strokes: far from the noise the generator starts from (FID of noise ~2500)
    assert metrics["fid"]["final"] < 1500
    grid = torch.tensor(list(Image.open(path.parent / "samples.png").convert("L").getdata()))
    dark = (grid < 64).float().mean()
    assert dark > 0.5  # MNIST-like: mostly dark background with bright strokes
