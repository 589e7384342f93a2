"""Small helpers for the entry points."""

from __future__ import annotations

import hashlib
from pathlib import Path

import rich
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf

from gan_lightning.images import folder_classes


def short_name(text: str, limit: int = 80) -> str:
    """``text`` if short enough for a folder name, else its start and a hash of the whole.

    Sweep folders are named after their overrides; a long list would exceed the file
    system's 255-byte name limit.
    """
    if len(text) <= limit:
        return text
    return f"{text[: limit - 9]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


if not OmegaConf.has_resolver("short_name"):
    OmegaConf.register_new_resolver("short_name", short_name)


def made_dir(path: str) -> str:
    """``${made_dir:path}``: the path, created if missing (for files opened before Hydra
    makes any folder, such as an Optuna study's SQLite file)."""
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


if not OmegaConf.has_resolver("made_dir"):
    OmegaConf.register_new_resolver("made_dir", made_dir)
if not OmegaConf.has_resolver("basename"):
    # a run's name for dashboards: its folder's (``3_optimizer=adam,z_dim=50``, ``12-13-34``)
    OmegaConf.register_new_resolver("basename", lambda path: Path(str(path)).name)


def gpus(accelerator: str, devices: int) -> int | None:
    """``${gpus:${trainer.accelerator},${trainer.devices}}``: the GPUs a SLURM task set asks
    for (``hydra/launcher=slurm``): the trainer's devices on ``gpu``/``cuda``, else none."""
    return devices if str(accelerator) in ("gpu", "cuda") else None


if not OmegaConf.has_resolver("folder_classes"):
    # a folder dataset's class count, read from its subfolders when the config is composed
    OmegaConf.register_new_resolver("folder_classes", folder_classes)

if not OmegaConf.has_resolver("gpus"):
    OmegaConf.register_new_resolver("gpus", gpus)
def slurm_startup() -> str:
    """``${slurm_startup:}``: the sbatch line that puts ``slurm_startup/`` (whose
    sitecustomize.py guards a job's start-up) first on the job's ``PYTHONPATH``."""
    folder = Path(__file__).resolve().parent / "slurm_startup"
    # no "${" in it: Hydra resolves the launcher's settings more than once
    return (f'if [ -n "$PYTHONPATH" ]; then export PYTHONPATH={folder}:$PYTHONPATH; '
            f'else export PYTHONPATH={folder}; fi')


if not OmegaConf.has_resolver("slurm_startup"):
    OmegaConf.register_new_resolver("slurm_startup", slurm_startup)
if not OmegaConf.has_resolver("cpus"):
    # ``${cpus:${threads}}``: the CPUs a SLURM task asks for: the run's threads, else 2
    OmegaConf.register_new_resolver("cpus", lambda threads: int(threads) if threads else 2)

#: the groups shown first in the printed config tree
ORDER = ("dataset", "model", "loss", "optimizer", "trainer", "callbacks", "logger", "paths")


def print_config(cfg: DictConfig, save_to: Path | None = None) -> None:
    """Print the composed config as a tree of YAML blocks and save it (resolved) to ``save_to``."""
    tree = rich.tree.Tree("config", guide_style="dim")
    keys = [k for k in ORDER if k in cfg] + [k for k in cfg if k not in ORDER]
    scalars = {k: cfg[k] for k in keys if not isinstance(cfg[k], DictConfig)}
    for key in keys:
        if key in scalars:
            continue
        text = OmegaConf.to_yaml(cfg[key], resolve=True)
        tree.add(key).add(rich.syntax.Syntax(text, "yaml"))
    tree.add("run").add(rich.syntax.Syntax(OmegaConf.to_yaml(scalars, resolve=True), "yaml"))
    rich.print(tree)
    if save_to is not None:
        save_to.write_text(OmegaConf.to_yaml(cfg, resolve=True))
