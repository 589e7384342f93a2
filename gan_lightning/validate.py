"""Checks of a composed config, before any folder is made or data is read.

Hydra already refuses unknown keys (``foo=1``: "Key 'foo' is not in struct") and unknown group
options (``optimizer=rmsprop``: it lists the available ones). These checks add what Hydra
cannot know, each failing with one line that names the key and what it accepts:

- types and ranges: ``z_dim=abc``, ``z_dim=0``, ``optimizer.lr=-1``, ``seed=-5``;
- every ``_target_`` imports (``targets.check_importable``: yours may name your own code);
- pairings: a conditional model needs a labelled dataset;
- the networks can be built for the dataset and fit the contract of ``networks``
  (``model=dcgan dataset=gaussian2d`` cannot; a G whose output is not the dataset's shape);
- options that need images are not set on point data (``augment.policy`` on gaussian2d);
- a key added with ``+`` (or ``++``) that nothing reads (``+z_dimm=20``, a typo that would
  otherwise train at the default z_dim without a word).
"""

from __future__ import annotations

import difflib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.utils import get_class, get_method
from omegaconf import DictConfig, OmegaConf

from gan_lightning.augment import TRANSFORMS, policy_names
from gan_lightning.errors import ConfigError
from gan_lightning.networks import build_networks
from gan_lightning.targets import check_importable

__all__ = ["ConfigError", "ValidateConfig", "check_added_keys", "validate"]


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# key -> (test, what it accepts); a key absent from the config is not checked
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "z_dim": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "n_critic": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    # numpy's and Lightning's seeding take unsigned 32-bit seeds
    "seed": (lambda v: _integer(v) and 0 <= v < 2**32, "an integer in [0, 2**32 - 1]"),
    "max_g_steps": (lambda v: v is None or (_integer(v) and v >= 1), "null or an integer >= 1"),
    "threads": (lambda v: v is None or (_integer(v) and v >= 1), "null or an integer >= 1"),
    "resume": (lambda v: v in (True, False, "auto"), "true, false or auto"),
    "fast": (lambda v: isinstance(v, bool), "true or false"),
    "dataset.batch_size": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "optimizer.lr": (lambda v: _number(v) and v > 0, "a number > 0"),
    "optimizer.d.lr": (lambda v: _number(v) and v > 0, "a number > 0"),
    "optimizer.g.lr": (lambda v: _number(v) and v > 0, "a number > 0"),
    "trainer.max_epochs": (lambda v: v is None or (_integer(v) and v >= -1),
                           "null or an integer >= -1 (-1: no limit)"),
    "trainer.log_every_n_steps": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "loss.real_label": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "loss.fake_label": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "dataset.resolution": (lambda v: _integer(v) and v >= 8, "an integer >= 8 (32, 64, 128)"),
    "dataset.channels": (lambda v: v in (1, 3), "1 (grayscale) or 3 (RGB)"),
    "dataset.max_memory_gb": (lambda v: _number(v) and v > 0, "a number > 0"),
    "dataset.max_unreadable": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "dataset.storage": (lambda v: v in ("float", "uint8"), "float or uint8"),
    "ema.decay": (lambda v: v is None or (_number(v) and 0 <= v < 1), "null or a number in [0, 1)"),
    "ema.start": (lambda v: _integer(v) and v >= 0, "an integer >= 0"),
    "standing_stats.batches": (lambda v: _integer(v) and v >= 0, "an integer >= 0 (0: off)"),
    "standing_stats.batch_size": (lambda v: _integer(v) and v >= 2, "an integer >= 2"),
    "dataset.validation": (lambda v: v == "auto" or (_integer(v) and v >= 0),
                           "auto or an integer >= 0 (0: none held out)"),
    "r1.gamma": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "r1.every": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "spectral_norm": (lambda v: isinstance(v, bool), "true or false"),
    "augment.policy": (lambda v: all(p in TRANSFORMS for p in policy_names(v)),
                       f"a list of {', '.join(TRANSFORMS)} ([] for none)"),
}

def validate(cfg: DictConfig, networks: bool = True, files: bool = False) -> None:
    """Raise ``ConfigError`` for the first thing wrong with a composed (task) config.

    ``networks``: also build G and D once to see that they fit the dataset (a few
    milliseconds; ``train.build`` builds them itself and passes False). ``files``: also
    check that the paths it names exist (``dataset.path``).
    """
    for key, (ok, accepts) in RULES.items():
        node = OmegaConf.select(cfg, key, default="<absent>", throw_on_missing=False)
        if isinstance(node, str) and node == "<absent>":
            continue
        if not ok(node):
            raise ConfigError(f"{key}={node!r} is not valid: {key} must be {accepts}")
    check_importable(cfg)
    img_shape = OmegaConf.select(cfg, "dataset.img_shape", default=None)
    policy = OmegaConf.select(cfg, "augment.policy", default=None)
    if img_shape is not None and len(img_shape) != 3 and policy_names(policy or []):
        name = OmegaConf.select(cfg, "dataset.name", default="?")
        raise ConfigError(f"augment.policy={list(policy_names(policy))} needs images; dataset "
                          f"'{name}' has points of shape {list(img_shape)}: use "
                          f"augment.policy=[]")
    if "num_classes" in (OmegaConf.select(cfg, "model.generator") or {}) and not (
            OmegaConf.select(cfg, "dataset.num_classes", default=None)):
        name = OmegaConf.select(cfg, "dataset.name", default="?")
        raise ConfigError(f"a conditional model needs a labelled dataset: dataset '{name}' has "
                          f"no classes (dataset.num_classes); choose mnist, fashion_mnist, "
                          f"cifar10 or a folder with class subfolders, or an unconditional "
                          f"model")
    if files and "path" in (cfg.get("dataset") or {}):
        path = cfg.dataset.path
        if not path or not Path(str(path)).expanduser().is_dir():
            raise ConfigError(f"dataset.path={path!r} is not a folder: dataset="
                              f"{cfg.dataset.get('name', 'folder')} needs dataset.path=<a "
                              f"folder of images> (png, jpg, bmp, webp, gif)")
    if networks and OmegaConf.select(cfg, "model.generator._target_", default=None):
        build_networks(cfg)


def check_added_keys(cfg: DictConfig, overrides: list[str],
                     is_group: Callable[[str], bool] = lambda key: False) -> None:
    """Refuse a key added on the command line with ``+key=value`` that nothing reads.

    Who reads a key: an object built from its node (``_target_``) takes the node's keys as
    arguments, so a key added beside a ``_target_`` must name one of them (unless the object
    takes ``**kwargs``); a key deeper down belongs to an argument that checks its own. Nothing
    reads a new key anywhere else: ``train.py`` reads the top-level keys the config defines,
    and a plain node's keys are read by name. (``++key=value`` overrides or adds on purpose and
    is not checked; ``+group=option`` adds a config group (``is_group``), not a key.) A
    sweep's axis (``+z_dimm=20,50``) is checked like a single value.
    """
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if not override.is_add() or key.split(".")[0] == "hydra" or is_group(key):
            continue
        parts = key.split(".")
        known, reader = _arguments(cfg, parts)
        if known is None or parts[-1] in known:
            continue
        close = difflib.get_close_matches(parts[-1], sorted(known), n=1, cutoff=0.6)
        hint = (f"did you mean {'.'.join([*parts[:-1], close[0]])}?" if close
                else f"{reader}: {', '.join(sorted(known - INSTANTIATE_KEYS))}")
        raise ConfigError(f"{override.input_line} adds a key that nothing reads ({hint}); "
                          f"it would be ignored")


#: the keys Hydra's ``instantiate`` reads itself
INSTANTIATE_KEYS = {"_target_", "_partial_", "_args_", "_recursive_", "_convert_"}


def _arguments(cfg: DictConfig, parts: list[str]) -> tuple[set[str] | None, str]:
    """The keys that whatever reads the node ``parts[:-1]`` takes (None: any key), and its
    name; a node without a reader takes the keys it already has."""
    for depth in range(len(parts) - 1, 0, -1):
        node = OmegaConf.select(cfg, ".".join(parts[:depth]))
        if isinstance(node, DictConfig) and "_target_" in node:
            if depth < len(parts) - 1:
                return None, ""  # inside a dict argument of that object
            try:
                target = get_class(str(node._target_))
            except ValueError:  # a function, not a class
                target = get_method(str(node._target_))
            except ImportError:
                return None, ""  # instantiate names what cannot be found
            try:
                params = inspect.signature(target).parameters.values()
            except (TypeError, ValueError):  # a builtin without a signature
                return None, ""
            if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
                return None, ""
            return ({p.name for p in params} - {"self"}) | INSTANTIATE_KEYS, \
                f"{node._target_} takes"
    parent = OmegaConf.select(cfg, ".".join(parts[:-1])) if len(parts) > 1 else cfg
    return set(parent) - {parts[-1]}, f"{'.'.join(parts[:-1]) or 'the top level'} has"


class ValidateConfig(Callback):
    """``hydra.callbacks.validate``: a single run's config is checked before Hydra makes its
    output folder; a bad value ends the command with one line and exit status 2. A sweep's
    added keys are checked before its folder; its jobs' values in ``train.run`` (a bad job is
    recorded as failed and the sweep goes on).
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, values=True)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, values=False)

    @staticmethod
    def _check(config: DictConfig, values: bool) -> None:
        task = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
        repository = GlobalHydra.instance().config_loader().repository
        try:
            check_added_keys(task, list(config.hydra.overrides.task),
                             lambda key: repository.group_exists(key.replace(".", "/")))
            if values:
                validate(task, files=True)
        except ConfigError as error:
            print(f"config error: {error}", file=sys.stderr)
            sys.exit(2)

