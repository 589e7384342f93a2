"""``fast=true`` (``gan_lightning.speedups``): on by default, recorded, the same calls and
weights as without, and a fallback with a warning when Lightning lacks a name one relies on."""

import warnings

import lightning as L
import pytest
import torch
from lightning.pytorch.profilers import PassThroughProfiler

from conftest import NO_METRICS, compose_cfg
from gan_lightning import speedups
from gan_lightning.train import build, run, summarize


class HookRecorder(L.Callback):
    """Records the hooks Lightning calls on it, in order."""

    def __init__(self):
        self.calls = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.calls.append(("epoch_start", trainer.current_epoch))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.calls.append(("batch_start", batch_idx, pl_module._current_fx_name))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.calls.append(("batch_end", batch_idx, pl_module.g_step))

    def on_train_epoch_end(self, trainer, pl_module):
        self.calls.append(("epoch_end", trainer.current_epoch))


def train(tiny_data, out, fast, patch=None):
    cfg = compose_cfg([*NO_METRICS, "trainer.max_epochs=2", f"fast={fast}"], tiny_data, out)
    L.seed_everything(5, verbose=False)
    datamodule, module, trainer = build(cfg)
    recorder = HookRecorder()
    trainer.callbacks.append(recorder)
    trainer.fit(module, datamodule=datamodule)
    return module, trainer, recorder


def test_fast_turns_every_speedup_on_and_off_changes_nothing(tiny_data, tmp_path):
    fast, fast_trainer, fast_calls = train(tiny_data, tmp_path / "a", "true")
    slow, slow_trainer, slow_calls = train(tiny_data, tmp_path / "b", "false")
    assert fast.speedups == list(speedups.SPEEDUPS) and slow.speedups == []
    assert type(fast_trainer.profiler) is speedups.NullProfiler
    assert type(slow_trainer.profiler) is PassThroughProfiler
    assert summarize(fast, fast_trainer)["speedups"] == list(speedups.SPEEDUPS)
    # callbacks see the same hooks, in the same order, with the same module state
    assert fast_calls.calls == slow_calls.calls and len(fast_calls.calls) == 2 * (2 + 2 * 8)
    assert fast_calls.calls[1] == ("batch_start", 0, "on_train_batch_start")
    for (name, a), b in zip(fast.state_dict().items(), slow.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_chosen_profiler_is_kept_and_times_every_callback(tiny_data, tmp_path):
    cfg = compose_cfg([*NO_METRICS, "trainer.max_epochs=1", "trainer.profiler=simple"],
                      tiny_data, tmp_path)
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    assert "profiler" not in module.speedups and "callback_hooks" not in module.speedups
    assert "direct_updates" in module.speedups
    timed = trainer.profiler.recorded_durations
    assert any(key.startswith("[Callback]") and key.endswith("on_train_batch_end")
               for key in timed)


def test_a_lightning_without_a_name_falls_back_with_a_warning(tiny_data, tmp_path,
                                                              monkeypatch):
    """A Lightning whose ``_call_callback_hooks`` changed: that speed-up stays off, one
    warning says so, and the run trains to the same weights."""
    from lightning.pytorch.trainer import call

    reference, _, _ = train(tiny_data, tmp_path / "a", "false")
    dispatch = speedups._lightning_dispatch or call._call_callback_hooks

    def changed(trainer, hook_name, *args, **kwargs):  # no monitoring_callbacks parameter
        return dispatch(trainer, hook_name, *args, **kwargs)

    monkeypatch.setattr(call, "_call_callback_hooks", changed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module, _, _ = train(tiny_data, tmp_path / "b", "true")
    messages = [str(w.message) for w in caught if "speed-up" in str(w.message)]
    assert len(messages) == 1 and "'callback_hooks' is off" in messages[0]
    assert "callback_hooks" not in module.speedups and "direct_updates" in module.speedups
    for (name, a), b in zip(module.state_dict().items(), reference.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name


def test_unknown_speedup_names_are_refused():
    with pytest.raises(ValueError, match="unknown speed-ups"):
        speedups.apply(None, None, ["profiler", "warp_drive"])


def test_the_record_lists_the_speedups(tiny_data, tmp_path):
    cfg = compose_cfg([*NO_METRICS, "trainer.max_epochs=1", "fast=false"], tiny_data, tmp_path)
    assert run(cfg)["speedups"] == []


class ArgumentRecorder(L.Callback):
    """Records, on each batch, what Lightning would pass to ``training_step`` and which object
    each batch hook is dispatched to, through Lightning's own code."""

    def __init__(self):
        self.kwargs, self.hooks = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        from collections import OrderedDict

        from lightning.pytorch.loops.training_epoch_loop import _TrainingEpochLoop

        loop = trainer.fit_loop.epoch_loop
        built = loop._build_kwargs(OrderedDict(), batch, batch_idx)
        lightnings = _TrainingEpochLoop._build_kwargs(loop, OrderedDict(), batch, batch_idx)
        self.kwargs.append((list(built), list(lightnings), built["batch_idx"] == batch_idx))
        selector = trainer._data_connector._datahook_selector
        self.hooks.append([(selector.get_instance(name),
                            type(selector).get_instance(selector, name))
                           for name in selector._valid_hooks])


def test_step_kwargs_and_batch_hooks_give_what_lightning_gives(tiny_data, tmp_path):
    """The two speed-ups that take an answer once give, on every batch, the answer Lightning
    computes each time: the same training_step arguments, the same hook owners (the
    datamodule for on_after_batch_transfer, which turns its uint8 batches to floats)."""
    cfg = compose_cfg([*NO_METRICS, "trainer.max_epochs=1"], tiny_data, tmp_path)
    datamodule, module, trainer = build(cfg)
    recorder = ArgumentRecorder()
    trainer.callbacks.append(recorder)
    trainer.fit(module, datamodule=datamodule)
    assert {"step_kwargs", "batch_hooks"} <= set(module.speedups)
    assert recorder.kwargs and all(
        fast == slow == ["batch", "batch_idx"] and same for fast, slow, same in recorder.kwargs)
    for hooks in recorder.hooks:
        assert all(fast is slow for fast, slow in hooks)
        assert any(owner is datamodule for owner, _ in hooks)


class Logs(L.Callback):
    """Logs with ``self.log`` from the first epoch's third batch on (as a user's callback
    might), and records what Lightning then holds after each batch."""

    def __init__(self):
        self.seen = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch or batch_idx >= 2:
            pl_module.log("user/batch_mean", batch[0].float().mean(), on_step=True,
                          on_epoch=True, prog_bar=True)
        self.seen.append((dict(trainer.logged_metrics), dict(trainer.callback_metrics),
                          dict(trainer.progress_bar_metrics), trainer._results.batch))


def test_empty_logs_gives_what_lightning_gives_before_and_after_a_user_logs(tiny_data,
                                                                            tmp_path):
    """Batches before anything is logged with ``self.log`` take the shortcut, those after take
    Lightning's own path: the logged, callback and progress-bar metrics (and the loggers' CSV)
    are the same after every batch as without the speed-up."""
    results = []
    for name, fast in (("a", "true"), ("b", "false")):
        cfg = compose_cfg([*NO_METRICS, "trainer.max_epochs=2", f"fast={fast}",
                           "trainer.log_every_n_steps=2"], tiny_data, tmp_path / name)
        datamodule, module, trainer = build(cfg)
        logs = Logs()
        trainer.callbacks.append(logs)
        trainer.fit(module, datamodule=datamodule)
        results.append((module.speedups, logs.seen, dict(trainer.logged_metrics)))
    (on, fast_seen, fast_end), (off, slow_seen, slow_end) = results
    assert "empty_logs" in on and off == []
    assert len(fast_seen) == len(slow_seen) == 16
    assert fast_seen[0][:3] == ({}, {}, {}) and "user/batch_mean_step" in fast_seen[-1][0]
    for fast, slow in zip(fast_seen, slow_seen, strict=True):
        for a, b in zip(fast[:3], slow[:3], strict=True):
            assert a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else a[k] == b[k]
                       for k in a)
    assert fast_end.keys() == slow_end.keys() and "user/batch_mean_epoch" in fast_end


def test_no_validation_is_off_in_a_run_that_validates(tiny_data, tmp_path):
    """A module with a validation step and validation data: the speed-up stays off and
    Lightning validates at each epoch's end; without them it is on."""
    cfg = compose_cfg([*NO_METRICS, "trainer.max_epochs=2"], tiny_data, tmp_path / "a")
    datamodule, module, trainer = build(cfg)
    calls = []
    module.__class__ = type("Validating", (type(module),),
                            {"validation_step": lambda self, batch, i: calls.append(i)})
    images = torch.zeros(16, 1, 28, 28)
    datamodule.__class__ = type("WithValidation", (type(datamodule),), {
        "val_dataloader": lambda self: torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(images), batch_size=8)})
    trainer.fit(module, datamodule=datamodule)
    assert "no_validation" not in module.speedups and trainer.enable_validation
    assert calls == [0, 1, 0, 1]  # both validation batches, at each epoch's end

    cfg = compose_cfg([*NO_METRICS, "trainer.max_epochs=1"], tiny_data, tmp_path / "b")
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    assert "no_validation" in module.speedups and not trainer.enable_validation


def test_tensorboard_crc_writes_the_checksums_tensorboard_verifies(tiny_data, tmp_path):
    """The C checksum equals TensorBoard's own for any length, and the event files of a run
    with it (sample grids included) read back through TensorBoard's checksum-verifying
    reader."""
    import os

    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    for n in (0, 1, 3, 64, 1000, 65_536 + 7):
        data = os.urandom(n)
        assert speedups.masked_crc32c(data) == masked_crc32c(data)
    cfg = compose_cfg([*NO_METRICS, "trainer.max_epochs=2"], tiny_data, tmp_path)
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    assert "tensorboard_crc" in module.speedups
    trainer.logger.experiment.flush()
    files = list(tmp_path.glob("**/events.out.tfevents.*"))
    records = [r for f in files for r in RawEventFileLoader(str(f), detect_file_replacement=False)
               .Load()]
    assert files and len(records) > 10
    assert sum(b"samples/fixed_noise" in r for r in records) == 2  # one grid per epoch


#: trains a plain LightningModule with a callback that records every hook Lightning calls; with
#: argv[1] == "gan", first trains a GANModule (all speed-ups on, TensorBoard) in this process
OTHER_MODULE = r'''
import json, sys
import lightning as L, torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer import call
from tensorboard.summary.writer import record_writer

originals = call._call_callback_hooks, record_writer.masked_crc32c
hooks = []

def recorder(name):
    def hook(self, *args, **kwargs):
        hooks.append(name)
    return hook

Recorder = type("Recorder", (Callback,), {n: recorder(n) for n in dir(Callback)
                                          if n.startswith("on_") or n in ("setup", "teardown")})

class Regression(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(3, 1)
    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("loss", loss)
        return loss
    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]))
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

def fit_plain(root):
    L.seed_everything(0, verbose=False)
    x = torch.randn(64, 3)
    data = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True)
    module = Regression()
    trainer = L.Trainer(max_epochs=2, default_root_dir=root, callbacks=[Recorder()],
                        log_every_n_steps=1, enable_progress_bar=False,
                        enable_model_summary=False,
                        logger=L.pytorch.loggers.TensorBoardLogger(root))
    trainer.fit(module, loader, loader)
    return {"hooks": hooks, "weights": [p.tolist() for p in module.parameters()],
            "metrics": {k: v.item() for k, v in trainer.callback_metrics.items()},
            "global_step": trainer.global_step}

if sys.argv[1] == "gan":
    from gan_lightning.loader import InMemoryLoader
    from gan_lightning.losses import NonSaturatingLoss
    from gan_lightning.models import MLPDiscriminator, MLPGenerator
    from gan_lightning.module import GANModule
    gan = GANModule(MLPGenerator(8, [1, 4, 4], [16]), MLPDiscriminator([1, 4, 4], [16]),
                    NonSaturatingLoss(), lambda p: torch.optim.SGD(p, lr=0.1),
                    lambda p: torch.optim.SGD(p, lr=0.1), z_dim=8, log_every_n_steps=1)
    images = torch.rand(32, 1, 4, 4) * 2 - 1
    trainer = L.Trainer(max_epochs=1, default_root_dir=sys.argv[2] + "/gan",
                        logger=L.pytorch.loggers.TensorBoardLogger(sys.argv[2] + "/gan"),
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(gan, InMemoryLoader(images, torch.zeros(32, dtype=torch.long), batch_size=8))
    assert {"callback_hooks", "tensorboard_crc"} <= set(gan.speedups), gan.speedups
    # put back once the GAN was torn down
    assert (call._call_callback_hooks, record_writer.masked_crc32c) == originals
else:
    assert "gan_lightning" not in sys.modules
result = fit_plain(sys.argv[2] + "/plain")
print(json.dumps(result))
'''


def test_another_module_trains_in_the_same_process_exactly_as_with_plain_lightning(tmp_path):
    """A GANModule's speed-ups leave nothing behind: a plain LightningModule trained after it
    in the same process calls the same hooks in the same order and ends with the same weights
    and logged values as in a process that never imported gan_lightning."""
    import json
    import subprocess
    import sys

    script = tmp_path / "other.py"
    script.write_text(OTHER_MODULE)

    def run_in_process(mode):
        out = subprocess.run([sys.executable, str(script), mode, str(tmp_path / mode)],
                             capture_output=True, text=True, check=True, cwd=tmp_path)
        return json.loads(out.stdout.strip().splitlines()[-1])

    alone, after_gan = run_in_process("plain"), run_in_process("gan")
    assert alone["global_step"] == 16 and len(alone["hooks"]) > 100
    assert after_gan == alone
