"""What a config's ``_target_`` may name, depending on where the config comes from.

**A config you compose** (the shipped groups, your ``--config-dir``, the command line) is your
code: its ``_target_`` may name any class or function that imports, yours included
(``mylab.nets.TinyG``). Each must import before anything runs; one that does not stops the run
with one line naming the module and the import path (``check_importable``).

**A checkpoint** is read weights-only, by ``gan-sample``, ``gan-eval`` and before a resume
(``load_plain_checkpoint``): one that would run code to load is refused.

**A config read back from a file** (the ``gan_config`` a checkpoint carries, read by
``gan-sample`` and ``gan-eval``) is data that may have been written by anyone. It may build only
``nn.Module`` subclasses (never a function such as ``os.system``, never any other callable), of
this package or ``torch.nn``, or of modules you trust by name (``trust=mylab``)
(``check_trusted``). A module is judged by its name before it is imported, since importing a
module runs its code.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from gan_lightning.errors import ConfigError, SetupError

#: modules whose ``nn.Module`` classes a checkpoint's config may build without being trusted
TRUSTED = ("gan_lightning", "torch.nn")


class UntrustedTarget(ConfigError):
    """A file's config names something it may not build (one line: what, where, how to allow)."""


class UnsafeCheckpoint(SetupError):
    """A checkpoint that is missing, damaged, or would run code to load (one line)."""


def load_plain_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint read with ``torch.load(weights_only=True)``: tensors and plain containers
    only, so a file carrying pickled code is refused, never run (whatever the torch or
    Lightning release would do by default)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UnsafeCheckpoint(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - pickle.UnpicklingError and friends
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnsafeCheckpoint(f"{path} is not a plain checkpoint (refused: it would need to "
                               f"run code to load, or is damaged): {first}") from None


def targets(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every ``(where, target)`` under ``node`` (plain dicts and lists)."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "_target_":
                yield where, value
            else:
                yield from targets(value, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from targets(value, f"{path}[{i}]")


def locate(target: str) -> Any:
    """The object a dotted ``target`` names, importing its module: ``ImportError`` when no
    prefix of it is a module, ``AttributeError`` when the module lacks the rest. An error raised
    while a module that exists is imported (a syntax error, a missing dependency) propagates."""
    parts = str(target).split(".")
    for cut in range(len(parts), 0, -1):
        name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(name)
        except ModuleNotFoundError as error:
            missing = error.name or ""
            if name == missing or name.startswith(missing + "."):
                continue  # this prefix is not a module: try a shorter one
            raise  # the module exists, but something it imports does not
        break
    else:
        raise ImportError(f"No module named '{parts[0]}'")
    for attr in parts[cut:]:
        if not hasattr(obj, attr):
            raise AttributeError(f"module '{name}' has no attribute '{attr}'")
        obj = getattr(obj, attr)
        name = f"{name}.{attr}"
    return obj


def import_path_hint() -> str:
    path = os.environ.get("PYTHONPATH")
    return (f"is the folder that holds it on PYTHONPATH (now {path!r})? gan-train adds the "
            f"folder it runs in" if path else "is the folder that holds it on PYTHONPATH (now "
            "unset)? gan-train adds the folder it runs in")


def check_importable(cfg: Any) -> None:
    """Raise ``ConfigError`` for the first ``_target_`` of a composed config that does not
    import (``cfg``: a DictConfig; interpolated targets are resolved)."""
    from omegaconf import OmegaConf

    for where, target in targets(OmegaConf.to_container(cfg, resolve=False)):
        if "${" in str(target):
            target = OmegaConf.select(cfg, where)
        try:
            locate(str(target))
        except ImportError as error:
            raise ConfigError(f"{where}='{target}' cannot be imported: {error}; "
                              f"{import_path_hint()}") from None
        except AttributeError as error:
            raise ConfigError(f"{where}='{target}' cannot be imported: {error}") from None
        except Exception as error:  # noqa: BLE001 - the user's module failed while importing
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ConfigError(f"{where}='{target}': importing its module failed with "
                              f"{type(error).__name__}: {first}") from None


def trust_list(trust: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"mylab,otherlab"`` or a list -> the module names trusted beyond ``TRUSTED``."""
    if not trust:
        return ()
    names = trust.split(",") if isinstance(trust, str) else list(trust)
    return tuple(n.strip().rstrip(".") for n in names if n.strip())


def _inside(target: str, modules: Sequence[str]) -> bool:
    return any(target == m or target.startswith(m + ".") for m in modules)


def check_trusted(node: dict[str, Any], where: str, trust: Sequence[str] = ()) -> None:
    """Refuse a config read from a file unless every ``_target_`` in ``node`` is an
    ``nn.Module`` class of ``TRUSTED`` or of the modules in ``trust``.

    ``where`` names the file and node in the message (``run/last.ckpt: model.generator``).
    """
    allowed = (*TRUSTED, *trust)
    for path, target in targets(node):
        target = str(target)
        name = f"{where}.{path}" if path != "_target_" else where
        if not _inside(target, allowed):
            top = target.split(".")[0]
            raise UntrustedTarget(
                f"{name}: _target_ '{target}' is outside {', '.join(TRUSTED)}; refused. A "
                f"checkpoint's config is data: if you trust the code it names, allow its "
                f"module with trust={top}")
        try:
            obj = locate(target)
        except (ImportError, AttributeError) as error:
            raise UntrustedTarget(f"{name}: _target_ '{target}' cannot be imported: {error}; "
                                  f"{import_path_hint()}") from None
        if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
            raise UntrustedTarget(f"{name}: _target_ '{target}' is not an nn.Module class "
                                  f"({type(obj).__name__}); a checkpoint may build networks "
                                  f"only; refused")
    if any(key == "_partial_" and value for key, value in _items(node)):
        raise UntrustedTarget(f"{where}: _partial_ is set; a checkpoint may build networks "
                              f"only; refused")


def _items(node: Any) -> Iterator[tuple[Any, Any]]:
    """Every ``(key, value)`` of every dict under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _items(value)
    elif isinstance(node, list):
        for value in node:
            yield from _items(value)
