import json
import math
from types import SimpleNamespace

import pytest

from conftest import NO_METRICS, run_train
from gan_lightning.callbacks import HealthMonitor
from gan_lightning.losses import ReportBCELoss


def fake_run():
    module = SimpleNamespace(latest={}, latest_step=-1, status=None, status_message="",
                             loss=ReportBCELoss())
    trainer = SimpleNamespace(should_stop=False, current_epoch=0)
    return module, trainer


def feed(monitor, module, trainer, points, start=0, **values):
    for i in range(points):
        module.latest_step = (start + i + 1) * 50
        module.latest = {"train/loss_d": values.get("loss_d", 1.2),
                         "train/loss_g": values.get("loss_g", 0.9),
                         "train/d_real": values.get("d_real", 0.7),
                         "train/d_fake": values.get("d_fake", 0.3)}
        monitor.on_train_batch_end(trainer, module, None, None, i)


def test_saturated_discriminator_collapses_after_patience():
    monitor, (module, trainer) = HealthMonitor(patience=4), fake_run()
    feed(monitor, module, trainer, 3, d_real=1.0, d_fake=1.0, loss_d=100.0, loss_g=0.0)
    assert not trainer.should_stop and module.status is None
    feed(monitor, module, trainer, 1, start=3, d_real=1.0, d_fake=1.0, loss_d=100.0, loss_g=0.0)
    assert trainer.should_stop and module.status == "collapsed"
    assert "generator step 200" in module.status_message
    assert "optimizer.lr=0.1" in module.status_message
    assert monitor.run_summary()["warnings"][0]["kind"] == "collapsed"


def test_both_low_or_clamped_loss_also_count_as_saturation():
    monitor, (module, trainer) = HealthMonitor(patience=2), fake_run()
    feed(monitor, module, trainer, 2, d_real=0.001, d_fake=0.002)
    assert module.status == "collapsed"
    monitor, (module, trainer) = HealthMonitor(patience=2), fake_run()
    feed(monitor, module, trainer, 2, loss_d=100.0)  # probabilities look fine, loss at clamp
    assert module.status == "collapsed"


def test_saturation_must_be_consecutive():
    monitor, (module, trainer) = HealthMonitor(patience=3), fake_run()
    feed(monitor, module, trainer, 2, d_real=1.0, d_fake=1.0)
    feed(monitor, module, trainer, 1, start=2)  # healthy point resets the count
    feed(monitor, module, trainer, 2, start=3, d_real=1.0, d_fake=1.0)
    assert module.status is None and not trainer.should_stop


def test_non_finite_loss_diverges_at_once():
    monitor, (module, trainer) = HealthMonitor(patience=10), fake_run()
    feed(monitor, module, trainer, 1, loss_g=math.nan)
    assert trainer.should_stop and module.status == "diverged"
    monitor, (module, trainer) = HealthMonitor(patience=10), fake_run()
    feed(monitor, module, trainer, 1, loss_d=math.inf)
    assert module.status == "diverged"


def test_healthy_values_never_trigger():
    monitor, (module, trainer) = HealthMonitor(patience=2), fake_run()
    feed(monitor, module, trainer, 100)
    assert module.status is None and not trainer.should_stop and monitor.warnings == []


def test_stale_log_point_is_not_counted_twice():
    monitor, (module, trainer) = HealthMonitor(patience=2), fake_run()
    feed(monitor, module, trainer, 1, d_real=1.0, d_fake=1.0)
    monitor.on_train_batch_end(trainer, module, None, None, 0)  # same latest_step again
    assert module.status is None


def test_keep_training_switch_warns_instead():
    monitor, (module, trainer) = HealthMonitor(patience=2, stop_on_collapse=False), fake_run()
    feed(monitor, module, trainer, 5, d_real=1.0, d_fake=1.0)
    assert not trainer.should_stop and module.status is None
    assert [w["kind"] for w in monitor.warnings] == ["collapsed"]


def test_d_overpowering_g_is_a_warning_only():
    monitor, (module, trainer) = HealthMonitor(patience=3), fake_run()
    feed(monitor, module, trainer, 3, d_real=0.999, d_fake=0.001)
    assert not trainer.should_stop and module.status is None
    assert [w["kind"] for w in monitor.warnings] == ["d_overpowers_g"]


def test_invalid_patience():
    with pytest.raises(ValueError, match="patience"):
        HealthMonitor(patience=0)


def test_short_healthy_real_run_raises_nothing(tiny_data, tmp_path):
    run_train([*NO_METRICS, "trainer.max_epochs=3"], tiny_data, tmp_path)
    (path,) = tmp_path.glob("runs/*/*/metrics.json")
    metrics = json.loads(path.read_text())
    assert metrics["status"] == "ok" and metrics["warnings"] == []
