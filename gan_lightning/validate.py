"""Checks of a composed config's values, before any folder is made or data is read.

Hydra already refuses unknown keys (``foo=1``: "Key 'foo' is not in struct") and unknown group
options (``optimizer=rmsprop``: it lists the available ones). These rules add types and
ranges: ``z_dim=abc``, ``z_dim=0``, ``optimizer.lr=-1``, ``dataset.batch_size=0`` each fail
with one line naming the key and what it accepts.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A config value out of type or range (one line: key, value, what is allowed)."""


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# key -> (test, what it accepts); a key absent from the config is not checked
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "z_dim": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "n_critic": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "seed": (_integer, "an integer"),
    "max_g_steps": (lambda v: v is None or (_integer(v) and v >= 1), "null or an integer >= 1"),
    "threads": (lambda v: v is None or (_integer(v) and v >= 1), "null or an integer >= 1"),
    "resume": (lambda v: v in (True, False, "auto"), "true, false or auto"),
    "dataset.batch_size": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "optimizer.lr": (lambda v: _number(v) and v > 0, "a number > 0"),
    "optimizer.d.lr": (lambda v: _number(v) and v > 0, "a number > 0"),
    "optimizer.g.lr": (lambda v: _number(v) and v > 0, "a number > 0"),
    "trainer.max_epochs": (lambda v: v is None or (_integer(v) and v >= -1),
                           "null or an integer >= -1 (-1: no limit)"),
    "trainer.log_every_n_steps": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "loss.real_label": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "loss.fake_label": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
}


def validate(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` for the first value that breaks a rule."""
    for key, (ok, accepts) in RULES.items():
        node = OmegaConf.select(cfg, key, default="<absent>", throw_on_missing=False)
        if isinstance(node, str) and node == "<absent>":
            continue
        if not ok(node):
            raise ConfigError(f"{key}={node!r} is not valid: {key} must be {accepts}")


class ValidateConfig(Callback):
    """``hydra.callbacks.validate``: a single run's config is checked before Hydra makes its
    output folder; a bad value ends the command with one line and exit status 2. (A sweep's
    jobs are checked in ``train.run``: a bad job is recorded as failed and the sweep goes on.)
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        task = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
        try:
            validate(task)
        except ConfigError as error:
            print(f"config error: {error}", file=sys.stderr)
            sys.exit(2)
