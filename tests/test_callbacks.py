import json
import math
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from conftest import NO_METRICS, compose_cfg, run_train
from gan_lightning.callbacks import HealthMonitor
from gan_lightning.losses import ReportBCELoss
from gan_lightning.run_state import RunState
from gan_lightning.train import build


def fake_run():
    module = SimpleNamespace(run=RunState(), probabilistic=ReportBCELoss.probabilistic)
    trainer = SimpleNamespace(should_stop=False, current_epoch=0)
    return module, trainer


def feed(monitor, module, trainer, points, start=0, **values):
    for i in range(points):
        module.run.publish({"train/loss_d": values.get("loss_d", 1.2),
                            "train/loss_g": values.get("loss_g", 0.9),
                            "train/d_real": values.get("d_real", 0.7),
                            "train/d_fake": values.get("d_fake", 0.3)}, (start + i + 1) * 50)
        monitor.on_train_batch_end(trainer, module, None, None, i)


def test_saturated_discriminator_collapses_after_patience():
    monitor, (module, trainer) = HealthMonitor(patience=4), fake_run()
    feed(monitor, module, trainer, 3, d_real=1.0, d_fake=1.0, loss_d=100.0, loss_g=0.0)
    assert not trainer.should_stop and module.run.status is None
    feed(monitor, module, trainer, 1, start=3, d_real=1.0, d_fake=1.0, loss_d=100.0, loss_g=0.0)
    assert trainer.should_stop and module.run.status == "collapsed"
    assert "generator step 200" in module.run.message
    assert "optimizer.lr=0.1" in module.run.message
    assert monitor.run_summary()["warnings"][0]["kind"] == "collapsed"


def test_both_low_or_clamped_loss_also_count_as_saturation():
    monitor, (module, trainer) = HealthMonitor(patience=2), fake_run()
    feed(monitor, module, trainer, 2, d_real=0.001, d_fake=0.002)
    assert module.run.status == "collapsed"
    monitor, (module, trainer) = HealthMonitor(patience=2), fake_run()
    feed(monitor, module, trainer, 2, loss_d=100.0)  # probabilities look fine, loss at clamp
    assert module.run.status == "collapsed"


def test_saturation_must_be_consecutive():
    monitor, (module, trainer) = HealthMonitor(patience=3), fake_run()
    feed(monitor, module, trainer, 2, d_real=1.0, d_fake=1.0)
    feed(monitor, module, trainer, 1, start=2)  # healthy point resets the count
    feed(monitor, module, trainer, 2, start=3, d_real=1.0, d_fake=1.0)
    assert module.run.status is None and not trainer.should_stop


def test_non_finite_loss_diverges_at_once():
    monitor, (module, trainer) = HealthMonitor(patience=10), fake_run()
    feed(monitor, module, trainer, 1, loss_g=math.nan)
    assert trainer.should_stop and module.run.status == "diverged"
    monitor, (module, trainer) = HealthMonitor(patience=10), fake_run()
    feed(monitor, module, trainer, 1, loss_d=math.inf)
    assert module.run.status == "diverged"


def test_healthy_values_never_trigger():
    monitor, (module, trainer) = HealthMonitor(patience=2), fake_run()
    feed(monitor, module, trainer, 100)
    assert module.run.status is None and not trainer.should_stop and monitor.warnings == []


def test_stale_log_point_is_not_counted_twice():
    monitor, (module, trainer) = HealthMonitor(patience=2), fake_run()
    feed(monitor, module, trainer, 1, d_real=1.0, d_fake=1.0)
    monitor.on_train_batch_end(trainer, module, None, None, 0)  # same latest_step again
    assert module.run.status is None


def test_keep_training_switch_warns_instead():
    monitor, (module, trainer) = HealthMonitor(patience=2, stop_on_collapse=False), fake_run()
    feed(monitor, module, trainer, 5, d_real=1.0, d_fake=1.0)
    assert not trainer.should_stop and module.run.status is None
    assert [w["kind"] for w in monitor.warnings] == ["collapsed"]


def test_d_overpowering_g_is_a_warning_only():
    monitor, (module, trainer) = HealthMonitor(patience=3), fake_run()
    feed(monitor, module, trainer, 3, d_real=0.999, d_fake=0.001)
    assert not trainer.should_stop and module.run.status is None
    assert [w["kind"] for w in monitor.warnings] == ["d_overpowers_g"]


def test_invalid_patience():
    with pytest.raises(ValueError, match="patience"):
        HealthMonitor(patience=0)


@pytest.mark.parametrize("optimizer", ["default", "adam"])
def test_short_healthy_real_run_raises_nothing(tiny_data, tmp_path, optimizer):
    """The default optimizer (SGD lr 0.1, see conf/optimizer/default.yaml) and Adam train
    without any health warning, logging at every generator step (24 log points), with the
    sample-diversity check judging every epoch (no warm-up)."""
    run_train([*NO_METRICS, "trainer.max_epochs=3", f"optimizer={optimizer}",
               "callbacks.health.diversity_warmup=0"], tiny_data, tmp_path)
    (path,) = tmp_path.glob("runs/*/*/metrics.json")
    metrics = json.loads(path.read_text())
    assert metrics["status"] == "ok" and metrics["warnings"] == []
    assert metrics["sample_diversity"] > 0.2  # judged, and above the threshold
    assert metrics["g_steps"] == 24 and "message" not in metrics


def test_critic_scores_are_not_checked_for_saturation():
    monitor, (module, trainer) = HealthMonitor(patience=2), fake_run()
    module.probabilistic = False  # GANModule reads it from the loss (HingeLoss, WGANGPLoss)
    feed(monitor, module, trainer, 5, d_real=1.0, d_fake=1.0, loss_d=100.0)
    assert module.run.status is None and monitor.warnings == []
    feed(monitor, module, trainer, 1, start=5, loss_d=math.nan)
    assert module.run.status == "diverged"  # divergence is checked for every loss


class NaNAfterFirstEpoch:
    """Wraps a loss: finite for epoch 0, NaN from epoch 1 on (as a blown-up run gives)."""

    def __init__(self, inner, module):
        self.inner, self.module = inner, module
        self.probabilistic, self.prob = inner.probabilistic, inner.prob

    def poison(self, value):
        return value * math.nan if self.module.current_epoch >= 1 else value

    def d_loss(self, real_logits, fake_logits):
        return self.poison(self.inner.d_loss(real_logits, fake_logits))

    def g_loss(self, fake_logits):
        return self.poison(self.inner.g_loss(fake_logits))


def test_diverged_run_stops_and_keeps_its_last_finite_checkpoint(tiny_data, tmp_path):
    """A NaN loss from epoch 2 (of 3) on: the run stops as 'diverged' at that epoch's first
    log point and keeps epoch 1's checkpoint (HealthMonitor + RunCheckpoint docstrings).
    loss=ns; every loss returns NaN rather than raising
    (test_losses.py::test_losses_propagate_nan_instead_of_raising)."""
    cfg = compose_cfg([*NO_METRICS, "trainer.max_epochs=3", "loss=ns"], tiny_data, tmp_path)
    datamodule, module, trainer = build(cfg)
    module.loss = NaNAfterFirstEpoch(module.loss, module)
    trainer.fit(module, datamodule=datamodule)
    assert module.run.status == "diverged" and "non-finite loss" in module.run.message
    assert module.g_step == 9  # stopped at the first log point of epoch 2 (of 3)
    assert trainer.should_stop
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert ckpt["g_step"] == 8  # epoch 1's weights, not the NaN ones
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


class CheckpointSpy(L.Callback):
    """At the start of each epoch, the g_step stored in <run>/last.ckpt (None: no file)."""

    def __init__(self, path):
        self.path, self.seen = path, []

    def on_train_epoch_start(self, trainer, pl_module):
        found = torch.load(self.path, weights_only=False)["g_step"] if self.path.is_file() else None
        self.seen.append((trainer.current_epoch, found))


def test_last_checkpoint_is_written_at_every_epoch_end(tiny_data, tmp_path):
    """conf/callbacks/default.yaml: "<run>/last.ckpt at each epoch end" (and the initial
    weights at the start). A run killed in epoch 3 must find epoch 2's weights on disk."""
    cfg = compose_cfg([*NO_METRICS, "trainer.max_epochs=3"], tiny_data, tmp_path)
    datamodule, module, trainer = build(cfg)
    spy = CheckpointSpy(tmp_path / "last.ckpt")
    trainer.callbacks.append(spy)
    trainer.fit(module, datamodule=datamodule)
    assert spy.seen == [(0, 0), (1, 8), (2, 16)]  # the initial weights, then each epoch's
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["g_step"] == 24


class ConstantGenerator(torch.nn.Module):
    """Draws the same image for every z (total mode collapse), or with ``spread`` noise."""

    def __init__(self, spread: float = 0.0):
        super().__init__()
        self.spread = spread
        self.image = torch.nn.Parameter(torch.zeros(1, 1, 28, 28))

    def forward(self, z):
        noise = self.spread * z[:, :1, None, None].expand(-1, 1, 28, 28)
        return self.image.expand(len(z), -1, -1, -1) + noise


def diversity_run(generator, epochs, g_step=1000):
    images = torch.rand(300, 1, 28, 28) * 2 - 1
    logged = []

    class Recorded(RunState):
        def log(self, trainer, scalars):
            logged.append(scalars)

    fixed_z = torch.randn(64, 8)
    module = SimpleNamespace(
        fixed_z=fixed_z, run=Recorded(), g_step=g_step,
        check_finite=lambda: True,
        fixed_samples=lambda: generator(fixed_z).detach())
    monitor = HealthMonitor()
    for epoch in range(epochs):
        trainer = SimpleNamespace(datamodule=SimpleNamespace(images=images),
                                  current_epoch=epoch, loggers=[])
        monitor.on_train_epoch_end(trainer, module)
    return monitor, logged


def test_collapsed_samples_warn_after_patience_epochs():
    monitor, logged = diversity_run(ConstantGenerator(), epochs=1)
    assert logged == [{"val/diversity": 0.0}] and monitor.warnings == []  # patience 2
    monitor, logged = diversity_run(ConstantGenerator(), epochs=3)
    (warning,) = monitor.warnings  # once, not at every epoch after
    assert warning["kind"] == "samples_collapsed" and "mode collapse" in warning["message"]
    assert monitor.run_summary()["sample_diversity"] == 0.0


def test_early_low_diversity_is_not_judged():
    """Every G starts with samples alike (measured: 0.02-0.4 of the data's diversity at
    initialisation); before ``diversity_warmup`` generator steps that is no collapse."""
    generator = ConstantGenerator()
    monitor, logged = diversity_run(generator, epochs=5, g_step=999)
    assert len(logged) == 5 and monitor.warnings == []


def test_varied_samples_do_not_warn():
    # noise of the data's own spread: about as diverse as the data
    monitor, logged = diversity_run(ConstantGenerator(spread=0.6), epochs=4)
    assert monitor.warnings == [] and logged[-1]["val/diversity"] > 0.5


def test_the_sample_grid_png_has_save_images_pixels(tmp_path):
    """The grid is encoded once (zlib level 1) for the run folder and TensorBoard: its pixels
    are exactly those ``torchvision.utils.save_image`` writes."""
    import numpy as np
    import torchvision
    from PIL import Image

    from gan_lightning.callbacks.samples import png, sample_grid

    grid = sample_grid(torch.rand(16, 1, 28, 28) * 2 - 1, nrow=4)
    torchvision.utils.save_image(grid, tmp_path / "reference.png")
    (tmp_path / "ours.png").write_bytes(png(grid))
    ours, reference = (np.asarray(Image.open(tmp_path / name)) for name in ("ours.png",
                                                                            "reference.png"))
    assert ours.shape == reference.shape == (grid.shape[1], grid.shape[2], 3)
    assert (ours == reference).all()


def test_the_progress_bar_draws_each_update_once_with_count_and_losses():
    """Every ``refresh_rate`` batches the bar is drawn once, showing the new count and the
    latest losses (Lightning's own bar draws each update twice: count, then losses)."""
    import io

    from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

    from gan_lightning.callbacks import GANProgressBar

    out = io.StringIO()
    progress = GANProgressBar(refresh_rate=2)
    progress._train_progress_bar = Tqdm(total=6, file=out)
    module, trainer = SimpleNamespace(run=RunState()), SimpleNamespace()
    progress.get_metrics = lambda trainer, module: {"loss_d": f"{batch:.3g}"}
    for batch in range(6):
        progress.on_train_batch_end(trainer, module, None, None, batch)
    frames = [f for f in out.getvalue().split("\r") if f.strip()]
    drawn = [f.split("|")[2].split()[0] for f in frames]  # "2/6" of "...| 2/6 [00:00<...]"
    assert drawn == ["0/6", "2/6", "4/6", "6/6"]
    assert [f.rsplit("loss_d=", 1)[-1].rstrip("]") for f in frames[1:]] == ["1", "3", "5"]
