"""Train a GAN: ``python train.py [group=option ...] [key=value ...]`` (``-m`` sweeps)."""

import gc
import sys

import hydra
from omegaconf import DictConfig

from gan_lightning.errors import ConfigError, SetupError
from gan_lightning.train import objective, run


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    try:
        record = run(cfg)
    except SetupError as error:  # how the run was set up, not a bug: one line, no traceback
        kind = "config error" if isinstance(error, ConfigError) else "error"
        print(f"{kind}: {error}", file=sys.stderr)
        sys.exit(2)
    # a number for hyper-parameter sweepers (hparams_search=...), None otherwise
    return objective(cfg, record)


if __name__ == "__main__":
    main()
    # Everything is written and closed by now (loggers finalised, metrics.json renamed into
    # place; atexit handlers still run). What is left is the interpreter's final garbage
    # collection over the objects of torch, Lightning and torchvision's imports (its cost is
    # in benchmarks/README.md); frozen objects are not traversed.
    gc.freeze()
