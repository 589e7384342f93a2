"""``gan-train``: ``python train.py`` from any folder, with the config groups this package ships.

    gan-train                                    # the report's MLP GAN -> ./outputs/runs/...
    gan-train -m optimizer=sgd,adam z_dim=20,50  # a sweep and its report -> ./outputs/multirun/...
    gan-train --config-dir ./conf model=mine     # your own config groups beside the shipped ones

Your project's configs: ``--config-dir DIR`` (Hydra's own option) adds a folder laid out like
``conf/`` (``DIR/model/mine.yaml``, ``DIR/loss/...``, ``DIR/experiment/...``) to the search
path; every shipped option stays available. A ``_target_`` may name your own code: the
current folder is put first on the import path, as ``python -m`` does, for this process and
the processes it starts (sweep jobs, DDP ranks, SLURM jobs), so ``mylab.nets.TinyG`` imports
from ``./mylab/nets.py``.
"""

from __future__ import annotations

import gc
import os
import sys

#: where gan-train reads its config groups: the conf/ folder installed with the package
CONFIG_PATH = "pkg://gan_lightning.conf"


def user_code_on_path(folder: str | None = None, children: bool = True) -> str:
    """Put ``folder`` (the current one by default) first on the import path of this process
    and, with ``children``, through ``PYTHONPATH`` of every Python process it starts.
    Returns the folder."""
    folder = os.path.abspath(folder or os.getcwd())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if children and folder not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([folder, *paths])
    return folder


def main() -> None:
    user_code_on_path()
    # As in train.py: nothing is collected while torch, Lightning and Hydra are imported, and
    # what they made is then frozen (a full collection walks every object made so far).
    gc.disable()
    import hydra

    from gan_lightning.train import main_task

    gc.freeze()
    gc.enable()
    hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")(main_task)()
    gc.freeze()  # see train.py: the interpreter's final collection skips frozen objects


if __name__ == "__main__":
    main()
