"""Every place this project reaches into Lightning's private names for speed, in one module.

Each speed-up below cuts what Lightning does around every training step of a small GAN
(hook dispatch, profiler contexts, attribute bookkeeping), never what the step computes: the
weights are bit-identical with ``fast=true`` (the default: all on) and ``fast=false`` (all
off); ``tests/test_speedups.py`` checks it. Each first checks that the names it relies on are
there; when a Lightning release has changed them, the run goes on without that speed-up and
says so in one warning. ``metrics.json`` lists those that were on (``speedups``). What each
saves is measured by ``python benchmarks/speedups.py``.

- ``hook_name``: Lightning sets ``LightningModule._current_fx_name`` around every hook call
  (dozens a step) and ``nn.Module.__setattr__`` checks each for parameters and submodules;
  the module stores the plain string directly instead (``FastHookName``).
- ``profiler``: with no profiler chosen, Lightning's ``PassThroughProfiler`` builds a
  generator-based context manager for each of the many ``profile()`` calls of a step;
  ``NullProfiler`` hands out one reusable ``nullcontext``.
- ``callback_hooks``: Lightning's ``_call_callback_hooks`` calls every hook of every callback,
  formatting a profiler label (``ModelCheckpoint``'s from its arguments) for each; with a
  no-op profiler it calls only the callbacks that override the hook, from a table built once
  (which also makes caching ``ModelCheckpoint.state_key`` unnecessary).
- ``direct_updates``: in full precision on one device, with nothing on the backward and
  optimizer-step hooks, ``GANModule.update`` drops the gradients, calls ``backward`` and the
  optimizer's ``step`` itself (``direct_step``) instead of ``zero_grad``, ``manual_backward``
  and ``LightningOptimizer.step`` (torch's ``zero_grad`` opens a profiler label around
  setting each gradient to ``None``).
- ``step_kwargs``: Lightning's training loop inspects ``training_step``'s signature on every
  batch to decide whether to pass ``batch_idx``; the answer is taken once.
- ``batch_hooks``: each of the three batch-transfer hooks a batch goes through asks whether
  the datamodule or the module overrides it (two ``is_overridden`` checks, each a walk over
  the class's methods); the answer, fixed for the run, is taken once per hook.
- ``empty_logs``: after every batch Lightning's logger connector reduces the values logged with
  ``self.log`` into its metric dicts and hands them to the loggers, finding the loop's results
  through a chain of state properties each time; this project logs through ``RunState.log``,
  so that collection is empty and the work yields empty dicts. While it is empty only the
  batch reference is dropped; once anything is logged with ``self.log``, Lightning's own code
  runs.
- ``no_validation``: after every batch Lightning asks whether to validate, re-deriving
  ``trainer.enable_validation`` (a walk over the module's methods for ``validation_step``); a
  run without validation (no ``validation_step``, no validation data or
  ``limit_val_batches=0``, all fixed when training starts) is answered "no" once.
- ``tensorboard_crc``: TensorBoard checksums every event record (CRC-32C) in pure Python,
  byte by byte, so an epoch's sample grid keeps it busy on its writer thread, holding the GIL
  that the training loop needs. ``google-crc32c``'s C code computes the same checksum (the
  event files are byte-identical). Not a Lightning name: TensorBoard's
  ``record_writer.masked_crc32c``, replaced (with a function that returns what it returns).

Scope: every speed-up acts on one trainer and its module only, and nothing changes when the
package is imported. The two that must replace a module-level function (``callback_hooks``:
Lightning's ``_call_callback_hooks``; ``tensorboard_crc``: ``masked_crc32c``) replace it when
a ``GANModule`` starts training and put the original back when it is torn down (``restore``);
in between, any other trainer is dispatched by Lightning's own function.

Not here: private names used for something other than speed (starting DDP ranks from a
Hydra job, the checkpoint callback's last.ckpt, Inception's one-pass forward, ...). Every
private name of another package used anywhere in ``gan_lightning``, this module's included,
is listed with its module and why in ``tests/test_layout.py`` (``PRIVATE_NAMES``), which fails
on any name not listed there.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import warnings
from collections import OrderedDict
from collections.abc import Collection
from typing import Any

import torch
from lightning.pytorch.profilers import PassThroughProfiler

log = logging.getLogger(__name__)

#: every speed-up, in the order they are applied
SPEEDUPS = ("hook_name", "profiler", "callback_hooks", "direct_updates", "step_kwargs",
            "batch_hooks", "empty_logs", "no_validation", "tensorboard_crc")

#: the hooks Lightning's backward and optimizer-step wrappers call, which direct updates skip
UPDATE_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


def apply(trainer: Any, module: Any, fast: bool | Collection[str]) -> list[str]:
    """Turn on the speed-ups ``fast`` names (``True``: all) that this Lightning allows.

    Called once training has started (the strategy, optimizers and callbacks are final).
    Returns the names of those turned on.
    """
    wanted = SPEEDUPS if fast is True else tuple(n for n in SPEEDUPS if n in (fast or ()))
    unknown = set(fast if not isinstance(fast, bool) else ()) - set(SPEEDUPS)
    if unknown:
        raise ValueError(f"unknown speed-ups {sorted(unknown)}; choose from {SPEEDUPS}")
    steps = {"hook_name": _hook_name, "profiler": _profiler,
             "callback_hooks": _callback_hooks, "direct_updates": _direct_updates,
             "step_kwargs": _step_kwargs, "batch_hooks": _batch_hooks,
             "empty_logs": _empty_logs, "no_validation": _no_validation,
             "tensorboard_crc": _tensorboard_crc}
    return [name for name in wanted if steps[name](trainer, module)]


#: the module-level functions replaced while a GANModule trains: (module, name) -> original
_replaced: dict[tuple[Any, str], Any] = {}


def _replace(owner: Any, name: str, value: Any) -> None:
    """``owner.name = value`` until ``restore``."""
    current = getattr(owner, name)
    if current is not value:
        _replaced.setdefault((owner, name), current)
        setattr(owner, name, value)


def restore() -> None:
    """Put back every module-level function a speed-up replaced (``GANModule.teardown``)."""
    while _replaced:
        (owner, name), original = _replaced.popitem()
        setattr(owner, name, original)


def _fall_back(name: str, missing: str) -> bool:
    warnings.warn(f"fast=true: speed-up '{name}' is off, this Lightning has no {missing}; "
                  f"training on without it (same results, a little slower)", stacklevel=3)
    return False


# -- hook_name ------------------------------------------------------------------------------
class FastHookName:
    """LightningModule mixin: ``_current_fx_name`` stored without ``nn.Module``'s checks."""

    _fast_hook_name = False

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_current_fx_name" and self._fast_hook_name:
            object.__setattr__(self, name, value)  # a plain string, as Module would store it
        else:
            super().__setattr__(name, value)


def _hook_name(trainer: Any, module: Any) -> bool:
    if not isinstance(module, FastHookName):
        return False
    if "_current_fx_name" not in module.__dict__:
        return _fall_back("hook_name", "LightningModule._current_fx_name")
    module._fast_hook_name = True
    return True


# -- profiler -------------------------------------------------------------------------------
class NullProfiler(PassThroughProfiler):
    """Lightning's no-op profiler with one reusable context instead of one per call."""

    _nothing = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.nullcontext:
        return self._nothing


def _profiler(trainer: Any, module: Any) -> bool:
    if type(getattr(trainer, "profiler", None)) is not PassThroughProfiler:
        return False  # a real profiler was chosen (or this Lightning has none to replace)
    trainer.profiler = NullProfiler()
    return True


# -- callback_hooks -------------------------------------------------------------------------
#: Lightning's own dispatch, kept for trainers without the table (and for fast=false)
_lightning_dispatch: Any = None


def _dispatch(trainer: Any, hook_name: str, *args: Any,
              monitoring_callbacks: bool | None = None, **kwargs: Any) -> None:
    """``lightning.pytorch.trainer.call._call_callback_hooks`` for trainers with a table: the
    same calls in the same order, less those of hooks a callback does not override."""
    table = trainer.__dict__.get("_gan_hook_table")
    if table is None or table[0] is not trainer.callbacks \
            or not isinstance(trainer.profiler, PassThroughProfiler):
        _lightning_dispatch(trainer, hook_name, *args,
                            monitoring_callbacks=monitoring_callbacks, **kwargs)
        return
    key = (hook_name, monitoring_callbacks)
    hooks = table[1].get(key)
    if hooks is None:
        hooks = table[1][key] = _overriding(trainer.callbacks, hook_name, monitoring_callbacks)
    pl_module = trainer.lightning_module
    if pl_module:
        previous = pl_module._current_fx_name
        pl_module._current_fx_name = hook_name
    for hook in hooks:
        hook(trainer, pl_module, *args, **kwargs)
    if pl_module:
        pl_module._current_fx_name = previous


def _overriding(callbacks: list[Any], hook_name: str, monitoring: bool | None) -> list[Any]:
    from lightning.pytorch.callbacks import Callback, Checkpoint, EarlyStopping

    if monitoring is not None:  # Lightning's own split of "monitoring callbacks"
        callbacks = [c for c in callbacks
                     if isinstance(c, (EarlyStopping, Checkpoint)) == monitoring]
    base = getattr(Callback, hook_name, None)
    return [getattr(c, hook_name) for c in callbacks
            if callable(getattr(c, hook_name, None))
            and (base is None or hook_name in vars(c)
                 or getattr(type(c), hook_name, None) is not base)]


def _callback_hooks(trainer: Any, module: Any) -> bool:
    global _lightning_dispatch
    from lightning.pytorch.trainer import call

    if not isinstance(trainer.profiler, PassThroughProfiler):  # or NullProfiler
        return False  # a real profiler times every callback: leave it every call
    original = getattr(call, "_call_callback_hooks", None)
    if original is None or "monitoring_callbacks" not in inspect.signature(original).parameters:
        return _fall_back("callback_hooks", "trainer.call._call_callback_hooks(..., "
                          "monitoring_callbacks)")
    if original is not _dispatch:
        _lightning_dispatch = original
        _replace(call, "_call_callback_hooks", _dispatch)
    trainer.__dict__["_gan_hook_table"] = (trainer.callbacks, {})
    return True


# -- direct_updates -------------------------------------------------------------------------
def _direct_updates(trainer: Any, module: Any) -> bool:
    """Whether ``direct_step`` may replace Lightning's backward and optimizer-step wrappers.

    They only change the result under a precision plugin that scales or casts (16-mixed), a
    strategy that synchronises (DDP), or a callback or module that implements one of
    ``UPDATE_HOOKS``; then the wrappers are used.
    """
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.plugins.precision import Precision
    from lightning.pytorch.strategies import SingleDeviceStrategy
    from lightning.pytorch.utilities.model_helpers import is_overridden

    if type(trainer.precision_plugin) is not Precision or not isinstance(
            trainer.strategy, SingleDeviceStrategy):
        return False
    if any(getattr(type(c), hook) is not getattr(Callback, hook)
           for c in trainer.callbacks for hook in UPDATE_HOOKS):
        return False
    if any(is_overridden(hook, module) for hook in UPDATE_HOOKS):
        return False
    optimizers = getattr(trainer.strategy, "_lightning_optimizers", None)
    if not optimizers or not all(hasattr(o, "_on_before_step") and hasattr(o, "_on_after_step")
                                 and hasattr(o, "optimizer") for o in optimizers):
        return _fall_back("direct_updates", "step counters on its LightningOptimizers")
    return True


def direct_step(optimizer: Any, loss: torch.Tensor) -> None:
    """``zero_grad(set_to_none=True)``, ``manual_backward`` and ``LightningOptimizer.step`` as
    they reduce in full precision on one device, without their hook dispatch; the loop's step
    counters still count the step. The gradients are dropped as torch's ``zero_grad`` drops
    them, without the profiler label it opens around that (a fixed cost per call, which a
    small model's step notices: ``benchmarks/speedups.py``)."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.grad = None
    loss.backward()
    optimizer._on_before_step()
    optimizer.optimizer.step()
    optimizer._on_after_step()


# -- step_kwargs ----------------------------------------------------------------------------
def _step_kwargs(trainer: Any, module: Any) -> bool:
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    build = getattr(loop, "_build_kwargs", None)
    if build is None:
        return _fall_back("step_kwargs", "fit_loop.epoch_loop._build_kwargs")
    # what Lightning passes, decided once: training_step's signature does not change
    takes_batch_idx = "batch_idx" in build(OrderedDict(), None, 0)

    def step_kwargs(kwargs: OrderedDict, batch: Any, batch_idx: int) -> OrderedDict:
        kwargs["batch"] = batch
        if takes_batch_idx:
            kwargs["batch_idx"] = batch_idx
        return kwargs

    loop._build_kwargs = step_kwargs
    return True


# -- batch_hooks ----------------------------------------------------------------------------
def _batch_hooks(trainer: Any, module: Any) -> bool:
    selector = getattr(getattr(trainer, "_data_connector", None), "_datahook_selector", None)
    if not callable(getattr(selector, "get_instance", None)) \
            or not hasattr(selector, "_valid_hooks"):
        return _fall_back("batch_hooks", "_data_connector._datahook_selector with get_instance "
                          "and _valid_hooks")
    # the module or the datamodule, per hook: both are fixed for the run
    chosen = {name: selector.get_instance(name) for name in selector._valid_hooks}
    selector.get_instance = lambda hook_name: chosen[hook_name] if hook_name in chosen \
        else type(selector).get_instance(selector, hook_name)
    return True


# -- empty_logs -----------------------------------------------------------------------------
def _empty_logs(trainer: Any, module: Any) -> bool:
    connector = getattr(trainer, "_logger_connector", None)
    batch_end = getattr(connector, "on_batch_end", None)
    step_metrics = getattr(connector, "update_train_step_metrics", None)
    if batch_end is None or step_metrics is None or not hasattr(type(trainer), "_results"):
        return _fall_back("empty_logs", "_logger_connector.on_batch_end and "
                          "update_train_step_metrics, or trainer._results")

    def on_batch_end() -> None:
        results = trainer._results
        if results is None or results:  # something was logged with self.log
            batch_end()
            return
        # Lightning's would merge three empty metric dicts; what is left is this
        results.batch = None
        results.batch_size = None

    def update_train_step_metrics() -> None:
        if trainer._results:  # empty: Lightning's would hand the loggers an empty dict (a no-op)
            step_metrics()

    connector.on_batch_end = on_batch_end
    connector.update_train_step_metrics = update_train_step_metrics
    return True


# -- no_validation --------------------------------------------------------------------------
def _no_validation(trainer: Any, module: Any) -> bool:
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    if not callable(getattr(loop, "_should_check_val_fx", None)):
        return _fall_back("no_validation", "fit_loop.epoch_loop._should_check_val_fx")
    if trainer.enable_validation:
        return False  # a run that validates: Lightning decides on every batch, as usual
    # Lightning's answer starts with "not enable_validation: no", and nothing it reads changes
    loop._should_check_val_fx = lambda data_fetcher: False
    return True


# -- tensorboard_crc ------------------------------------------------------------------------
try:  # imported once here, not on each of the two checksums of every event record
    import google_crc32c
except ImportError:  # tensorboard_crc then falls back with a warning
    google_crc32c = None


def masked_crc32c(data: bytes) -> int:
    """TensorBoard's record checksum: CRC-32C of ``data``, masked as TFRecord masks it."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _tensorboard_crc(trainer: Any, module: Any) -> bool:
    from lightning.pytorch.loggers import TensorBoardLogger

    if not any(isinstance(logger, TensorBoardLogger) for logger in trainer.loggers):
        return False  # nothing writes TensorBoard events
    try:
        from tensorboard.summary.writer import record_writer
    except ImportError:
        record_writer = None
    if google_crc32c is None or record_writer is None:
        return _fall_back("tensorboard_crc", "google_crc32c or tensorboard record_writer")
    if google_crc32c.implementation != "c" or not callable(
            getattr(record_writer, "masked_crc32c", None)):
        return _fall_back("tensorboard_crc", "record_writer.masked_crc32c (or no C CRC-32C)")
    _replace(record_writer, "masked_crc32c", masked_crc32c)
    return True
